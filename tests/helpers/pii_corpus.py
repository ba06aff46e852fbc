"""Texts with and without PII, each with the text a user expects to see stored.

tests/test_redaction.py ingests them through the pipeline; tests/test_validation_paths.py
checks that both validation paths redact them alike.
"""

from __future__ import annotations

EMAIL, PHONE, CARD = "[REDACTED:email]", "[REDACTED:phone]", "[REDACTED:card_number]"
KEY, BEARER = "[REDACTED:api_key]", "[REDACTED:bearer_token]"
AWS_SECRET, IBAN, SSN = "[REDACTED:aws_secret_key]", "[REDACTED:iban]", "[REDACTED:ssn]"

# (text as sent, text as stored)
CORPUS: list[tuple[str, str]] = [
    # emails
    ("contact bob.smith@example.com today", f"contact {EMAIL} today"),
    ("email: JOHN_DOE+tag@sub.mail.co.uk.", f"email: {EMAIL}."),
    ("see https://example.com/users/alice@example.org/profile", f"see https://example.com/users/{EMAIL}/profile"),
    ("<a href=\"mailto:ops@corp.io\">mail</a>", f"<a href=\"mailto:{EMAIL}\">mail</a>"),
    ("two: a@b.io and c.d@e-f.com", f"two: {EMAIL} and {EMAIL}"),
    ("the @ sign alone, user@localhost", "the @ sign alone, user@localhost"),
    ("version 1.2.3@beta and @mention", "version 1.2.3@beta and @mention"),
    ("pip install pkg==1.0 @ git+https://github.com/x/y", "pip install pkg==1.0 @ git+https://github.com/x/y"),
    # card numbers: only Luhn-valid ones
    ("card 4111 1111 1111 1111 exp 12/27", f"card {CARD} exp 12/27"),
    ("card 4111-1111-1111-1111", f"card {CARD}"),
    ("card 5500005555555559.", f"card {CARD}."),
    ("amex 378282246310005", f"amex {CARD}"),
    ("order 4111111111111112 (fails Luhn)", "order 4111111111111112 (fails Luhn)"),
    ("order 1234 5678 1234 5678", "order 1234 5678 1234 5678"),
    ("build 20240115123045", "build 20240115123045"),
    ("epoch ms 1736935200123", "epoch ms 1736935200123"),
    # phone numbers
    ("call +1 415-555-0132 now", f"call {PHONE} now"),
    ("call (415) 555-0132", f"call {PHONE}"),
    ("call 415.555.0132", f"call {PHONE}"),
    ("uk +44 20 7946 0958", f"uk {PHONE}"),
    ("uk mobile +44 7911 123456", f"uk mobile {PHONE}"),
    ("e164 +14155550132.", f"e164 {PHONE}."),
    ("fr +33 1 42 68 53 00", f"fr {PHONE}"),
    ("date 2024-01-15 at 12:30", "date 2024-01-15 at 12:30"),
    ("ip 192.168.1.100 port 8080", "ip 192.168.1.100 port 8080"),
    ("score +12 points, ext 555-0132", "score +12 points, ext 555-0132"),
    ("uuid 123e4567-e89b-12d3-a456-426614174000", "uuid 123e4567-e89b-12d3-a456-426614174000"),
    # API keys and tokens
    ("key sk-proj-abcdefghijklmnopqrstuvwxyz123456", f"key {KEY}"),
    ("key sk-ant-api03-abcdefghijklmnopqrstuvwxyz", f"key {KEY}"),
    ("aws AKIAIOSFODNN7EXAMPLE", f"aws {KEY}"),
    ("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", f"gh {KEY}"),
    ("hf hf_abcdefghijklmnopqrstuvwxyzABCDEF", f"hf {KEY}"),
    ("slack xoxb-1234567890-abcdefghij", f"slack {KEY}"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", f"jwt {KEY}"),
    ("Authorization: Bearer abcdef0123456789abcdef.xyz", f"Authorization: Bearer {BEARER}"),
    ("curl -H 'authorization: bearer QWxhZGRpbjpvcGVuIHNlc2FtZQ=='", f"curl -H 'authorization: bearer {BEARER}'"),
    ("the bearer of bad news", "the bearer of bad news"),
    ("skip the sk- prefix talk; task-1234567890", "skip the sk- prefix talk; task-1234567890"),
    ("sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    # AWS secret access keys: by their name, or beside their key id; alone they are any token
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     f"aws_secret_access_key = {AWS_SECRET}"),
    ('{"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}',
     f'{{"AWS_SECRET_ACCESS_KEY": "{AWS_SECRET}"}}'),
    ("creds AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", f"creds {KEY} {AWS_SECRET}"),
    ("creds AKIAIOSFODNN7EXAMPLE secret: wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
     f"creds {KEY} secret: {AWS_SECRET}"),
    ("blob wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY alone", "blob wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY alone"),
    ("secret santa list", "secret santa list"),
    # bare 10-digit national numbers: North American, or with a trunk 0
    ("call 4155552671 today", f"call {PHONE} today"),
    ("Berlin 0301234567", f"Berlin {PHONE}"),
    ("de +49 (0)30 123456", f"de {PHONE}"),
    ("uk +44 (0)20 7946 0958", f"uk {PHONE}"),
    ("epoch 1736935200 seconds", "epoch 1736935200 seconds"),
    ("pi 3.1415926535 and 0.2345678901", "pi 3.1415926535 and 0.2345678901"),
    ("nine 415555267 or eleven 41555526711", "nine 415555267 or eleven 41555526711"),
    ("id A4155552671", "id A4155552671"),
    ("int32 -2147483647..2147483647", "int32 -2147483647..2147483647"),
    # IBANs, with their mod-97 check
    ("iban DE89 3704 0044 0532 0130 00, thanks", f"iban {IBAN}, thanks"),
    ("iban GB82WEST12345698765432", f"iban {IBAN}"),
    ("iban GB82WEST12345698765433 (check fails)", "iban GB82WEST12345698765433 (check fails)"),
    ("code AB12CDEF3456789012", "code AB12CDEF3456789012"),
    # US social security numbers, without the ranges never issued
    ("ssn 123-45-6789", f"ssn {SSN}"),
    ("ssn 078 05 1120", f"ssn {SSN}"),
    ("not 000-12-3456", "not 000-12-3456"),
    ("not 666-12-3456", "not 666-12-3456"),
    ("not 900-12-3456", "not 900-12-3456"),
    ("not 123-00-4567", "not 123-00-4567"),
    ("not 123-45-0000", "not 123-45-0000"),
    # several kinds in one text
    ("I'm ann@x.org, +1 (415) 555-0199, card 4242 4242 4242 4242",
     f"I'm {EMAIL}, {PHONE}, card {CARD}"),
]
