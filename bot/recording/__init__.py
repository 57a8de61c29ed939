"""Runtime recording of portal runs: what the worker, a replay and the catalog write while they run.

``recorder`` collects a run's steps, screenshots, trace and HAR and keeps a scrubbed bundle when it
failed; ``scrub`` cleans HAR files and traces; ``fingerprint`` notes each page's structure and
``baselines`` its last good look; ``store`` is the ``runs`` table; ``offline`` answers an offline
replay from a recorded HAR. The operator tools that read these records live in ``scenarios``.
"""
