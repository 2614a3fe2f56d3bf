"""Edge inference for the camera nodes: model assets (registry, set-up-time fetch, hash
checks), the TFLite interpreter seam, and the BlazePose pipeline (``edge_models.pose``)."""
