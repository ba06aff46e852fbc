"""The genobs dashboards: the Streamlit entry script (st.navigation over dashboards/views).

Run by `genobs serve` / `genobs dashboard` through genobs.dashboards.launch.run_ui, which
sets GENOBS_DB; `streamlit run dashboards/app.py` works too (GENOBS_DB, else ./genobs.duckdb).
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from genobs.dashboards import auth, queries

VIEWS = Path(__file__).resolve().parent / "views"

# (file, title, icon, url path): the order of the navigation menu.
PAGES: tuple[tuple[str, str, str, str], ...] = (
    ("overview.py", "Overview", ":material/dashboard:", "overview"),
    ("oncall.py", "On-call", ":material/notifications_active:", "oncall"),
    ("quality.py", "Quality", ":material/fact_check:", "quality"),
    ("drift.py", "Drift", ":material/trending_up:", "drift"),
    ("gpus.py", "GPUs", ":material/memory:", "gpus"),
    ("slos.py", "SLOs", ":material/speed:", "slos"),
    ("canary.py", "Canary", ":material/science:", "canary"),
    ("samples.py", "Samples", ":material/search:", "samples"),
)


def main() -> None:
    st.set_page_config(page_title="genobs", page_icon=":material/monitoring:", layout="wide")
    pages = [st.Page(VIEWS / file, title=title, icon=icon, url_path=path, default=(i == 0))
             for i, (file, title, icon, path) in enumerate(PAGES)]
    # Navigation first (hidden until the visitor has passed), so the page a link asked for is
    # the page shown after the token is given; nothing of it runs before that.
    page = st.navigation(pages, position="sidebar" if auth.allowed() else "hidden")
    if not auth.gate():
        st.stop()
    db = queries.db_path()
    problem = queries.open_problem(db)
    if problem:
        st.title(page.title)
        st.error(f"Cannot open the database: {problem}")
        st.stop()
    st.sidebar.caption(f"database: `{db}`")
    page.run()


main()
