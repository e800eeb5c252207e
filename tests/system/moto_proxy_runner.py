"""Run moto's HTTPS proxy (moto_proxy) with its per-host certificates in a private directory.

moto_proxy writes a certificate for each host it intercepts into its package directory.
This runner points it at CERT_DIR instead, so tests leave the installed package unchanged.

Usage: python moto_proxy_runner.py CERT_DIR [moto_proxy arguments...]
"""

import shutil
import sys
from pathlib import Path

from moto.moto_proxy.certificate_creator import CertificateCreator
from moto.proxy import main

if __name__ == "__main__":
    cert_dir = Path(sys.argv[1])
    cert_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(Path(CertificateCreator.certdir) / "req.conf.tmpl", cert_dir / "req.conf.tmpl")
    CertificateCreator.certdir = str(cert_dir) + "/"
    main(sys.argv[2:])
