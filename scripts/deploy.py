"""Deploy IssuerRegistry and CredentialAnchor to any JSON-RPC URL and write the deployment
record. Same as ``anchor-service deploy``:

    MICROCRED_PRIVATE_KEY=0x... python scripts/deploy.py --rpc-url http://127.0.0.1:8545
    python scripts/deploy.py --rpc-url URL --keystore deployer.json --out deployments/x.json
"""

from __future__ import annotations

import sys

from anchor_service.cli import main

if __name__ == "__main__":
    sys.exit(main(["deploy", *sys.argv[1:]]))
