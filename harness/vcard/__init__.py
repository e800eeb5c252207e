"""A virtual YubiKey with the YKOATH applet, inserted into pcscd's vpcd reader.

Run it with `python -m harness.vcard --state FILE --log FILE` from the repository root.
"""
