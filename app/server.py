"""The page as an ASGI app that warms the model and index while the server starts.

``streamlit run app/server.py`` (what ``make run`` does) finds ``app`` below and serves
``streamlit_app.py`` with it. Without the warm-up, the model loads when the first browser
connects, and the first reader waits for it. The default ONNX encoder loads in about a second
(no torch import), so the page is ready about as soon as Streamlit itself is.
"""

import contextlib
import logging
import threading

import streamlit as st

import shared

log = logging.getLogger("rag.server")
WARM_UP_THREAD = "warm-up"


def _not_from_warm_up(record: logging.LogRecord) -> bool:
    # The cached loaders warn that they run outside a page's script; that is the point here.
    return record.threadName != WARM_UP_THREAD


logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_not_from_warm_up)


def _warm_up() -> None:
    try:
        shared.warm_up(shared.settings())
    except Exception:  # the page reports the same failure to the reader, with what to do
        log.exception("warm-up failed; the first page load will retry")


@contextlib.asynccontextmanager
async def warm_at_start(_app):
    # In the background: the port opens at once, and a page load that comes early waits on the
    # same cached loader instead of loading the model a second time.
    threading.Thread(target=_warm_up, name=WARM_UP_THREAD, daemon=True).start()
    yield


def _skip_component_scan() -> None:
    """Streamlit scans the metadata of every installed distribution for custom components when its
    runtime starts: 0.8 s of the page's start-up with this project's venv, on the path to the first
    page load. The page uses no custom components, so there is nothing to find."""
    from streamlit.components.v2 import manifest_scanner

    if hasattr(manifest_scanner, "scan_component_manifests"):
        manifest_scanner.scan_component_manifests = lambda *args, **kwargs: []


_skip_component_scan()
app = st.App("streamlit_app.py", lifespan=warm_at_start)
