"""The deterministic development accounts shared by both backends.

Both anvil and the in-process chain derive their funded accounts from the same BIP39 mnemonic
along ``m/44'/60'/0'/0/i``, so a test or a service configuration sees the same addresses and
keys whichever backend runs.
"""

from __future__ import annotations

from functools import lru_cache

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.signers.local import LocalAccount
from eth_utils.exceptions import ValidationError

from localchain.errors import LocalChainError

__all__ = [
    "DEFAULT_ACCOUNT_COUNT",
    "DEFAULT_BALANCE_WEI",
    "DEFAULT_CHAIN_ID",
    "DEFAULT_MNEMONIC",
    "DERIVATION_PATH_PREFIX",
    "derive_accounts",
]

#: anvil's (and Hardhat's) well-known development mnemonic. Public: never fund it on a real
#: network.
DEFAULT_MNEMONIC = "test test test test test test test test test test test junk"
#: Account ``i`` is derived at ``f"{DERIVATION_PATH_PREFIX}/{i}"`` (anvil's default path).
DERIVATION_PATH_PREFIX = "m/44'/60'/0'/0"
DEFAULT_ACCOUNT_COUNT = 10
DEFAULT_BALANCE_ETH = 10_000
DEFAULT_BALANCE_WEI = DEFAULT_BALANCE_ETH * 10**18
DEFAULT_CHAIN_ID = 31337
MAX_ACCOUNT_COUNT = 1000


def derive_accounts(
    mnemonic: str = DEFAULT_MNEMONIC, count: int = DEFAULT_ACCOUNT_COUNT
) -> list[LocalAccount]:
    """The first ``count`` accounts of ``mnemonic``, as signing-capable local accounts."""
    return list(_derive(mnemonic, count))


# Derivation costs ~10 ms per account in pure Python; tests start many chains with the same
# mnemonic, so remember the result (LocalAccount objects are not mutated by signing).
@lru_cache(maxsize=8)
def _derive(mnemonic: str, count: int) -> tuple[LocalAccount, ...]:
    if not 1 <= count <= MAX_ACCOUNT_COUNT:
        raise ValueError(f"account count must be between 1 and {MAX_ACCOUNT_COUNT}, not {count}")
    try:
        seed = seed_from_mnemonic(mnemonic, "")
    except ValidationError:
        # eth-account's message repeats the words; a mnemonic is a secret, so do not echo it.
        raise LocalChainError("the mnemonic is not a valid BIP39 phrase") from None
    return tuple(
        Account.from_key(key_from_seed(seed, f"{DERIVATION_PATH_PREFIX}/{index}"))
        for index in range(count)
    )
