"""Who may see the dashboards: a shared token, OIDC through st.login, or loopback only.

Prompts and responses are sensitive even after redaction, so when a token or OIDC is
configured no page renders (not even a filter list) until the visitor has passed.
"""

from __future__ import annotations

import hmac
import os

import streamlit as st

from genobs.config import ConfigError, load_config

# Set by launch.run_ui when the runtime hands over a token; otherwise the env var named by
# ui.token_env (GENOBS_UI_TOKEN) is read.
_configured_token: str | None = None


def set_token(token: str | None) -> None:
    global _configured_token
    _configured_token = token or None


def token_env_name() -> str:
    try:
        return load_config().ui.token_env
    except ConfigError:
        return "GENOBS_UI_TOKEN"


def expected_token() -> str | None:
    return _configured_token or os.environ.get(token_env_name()) or None


def oidc_configured() -> bool:
    """Whether Streamlit has an [auth] section (st.login's OIDC settings) in its secrets."""
    try:
        return "auth" in st.secrets
    except Exception:  # no secrets file at all: Streamlit raises rather than answering False
        return False


def auth_configured() -> bool:
    return expected_token() is not None or oidc_configured()


def token_matches(given: str, expected: str) -> bool:
    """Constant-time comparison: the time taken says nothing about how much was right."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def allowed() -> bool:
    """Whether this session may see pages (nothing configured, logged in, or token given)."""
    if oidc_configured() and not st.user.is_logged_in:
        return False
    return expected_token() is None or bool(st.session_state.get("_genobs_authenticated"))


def gate() -> bool:
    """Ask for the token / login when one is required. True when the visitor may see pages;
    otherwise the sign-in form is drawn and the caller must stop."""
    if oidc_configured() and not st.user.is_logged_in:
        st.title("genobs")
        st.write("Sign in to see the dashboards.")
        st.button("Log in", on_click=st.login, type="primary")
        return False
    expected = expected_token()
    if expected is None or st.session_state.get("_genobs_authenticated"):
        return True
    st.title("genobs")
    with st.form("genobs_token"):
        given = st.text_input("Access token", type="password",
                              help=f"The value of {token_env_name()} on the server.")
        submitted = st.form_submit_button("Open dashboards", type="primary")
    if submitted:
        if token_matches(given, expected):
            st.session_state["_genobs_authenticated"] = True
            st.rerun()
        st.error("Wrong token.")
    return False
