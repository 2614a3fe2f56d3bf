"""Review video kept on the camera nodes: each node records its session's frames to its own
disk (:mod:`.store`, :mod:`.recorder`), forgets them after a size and age bound
(:mod:`.retention`) or when their patient is erased, and serves clips by trigger index over
HTTP when the coordinator asks (:mod:`.server`, wire format in :mod:`.protocol`). Video never
goes anywhere by itself."""
