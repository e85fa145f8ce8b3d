"""What every worker process needs before its first job, done once where the workers come from.

The fork server imports this module (workers._context) and each worker is forked from it with these done;
the spawned helper of a small run imports it while the run goes on (workers._warm_up). Importing the
pipeline is the bulk. pandera then registers its polars backends on a process's first validate() (importing
its built-in checks, ~0.1–0.2 s), which each of a national run's four workers paid again: it is done here,
by the call validate() makes (the same arguments, so validate() finds it in the function's cache).

Nothing here may start polars' thread pool: the server is forked, and a pool does not survive a fork
(validating even an empty frame starts it; tests/test_workers.py checks the thread count).
"""
import annex.pipeline  # noqa: F401  (everything a job of the run imports)

try:
    from pandera.backends.polars.register import register_polars_backends
    from pandera.config import CONFIG
except ImportError:   # another pandera layout: each worker registers on its first validate(), as before
    pass
else:
    register_polars_backends(use_narwhals_backend=CONFIG.use_narwhals_backend)
