"""The reader's page: navigation, the model and index loaded once, and the index status.

Run with ``make run``. Each page in ``app/views/`` only calls the library; nothing here
retrieves or composes anything itself.
"""

import streamlit as st

import shared
from cards import CSS

st.set_page_config(page_title="Ask the sources", page_icon=":material/menu_book:", layout="centered",
                   initial_sidebar_state="expanded")
# views/, not pages/: Streamlit would serve a pages/ folder's scripts on their own, without this one.
page = st.navigation([
    st.Page("views/ask.py", title="Ask", icon=":material/forum:", default=True),
    st.Page("views/sources.py", title="Sources", icon=":material/library_books:"),
    st.Page("views/evaluation.py", title="Evaluation", icon=":material/monitoring:"),
])
st.html(CSS)
state = shared.ready()
if state is not None:
    page.run()
    shared.sidebar_status(shared.current().assistant)  # reread: the page may have rebuilt the index
