"""The clinic's records on the rig: accounts and roles, patients, the condition each session
was walked in, and the audit log of who opened which patient.

``model`` is pure (validation, permissions, visits); ``store`` keeps it in its own SQLite file
(``clinic.sqlite``), written only by the tablet daemon and the ``gaitrig users`` /
``gaitrig patients`` commands — the coordinator's recording database stays read-only to the
web. Sessions are referenced by the coordinator's session id.
"""
