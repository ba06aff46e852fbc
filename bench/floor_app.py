"""The bench's reference page (bench/bench_dashboard.py): Streamlit's own floor on this
machine, a page with a heading and one line of text, served with the dashboards' settings.
A dashboard page cannot render faster than this; the difference is the page's own cost."""

import streamlit as st

st.set_page_config(page_title="floor", layout="wide")
st.title("Floor")
st.caption("Streamlit's minimum page: the time to load its frontend, connect and draw a heading.")
