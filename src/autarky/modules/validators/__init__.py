"""The validator set: the keys whose votes make a block final on a distributed engine."""

from autarky.modules.validators.module import (
    MAX_VALIDATORS,
    SET_KEY,
    ValidatorsModule,
    quorum,
    read_validators,
)

__all__ = ["MAX_VALIDATORS", "SET_KEY", "ValidatorsModule", "quorum", "read_validators"]
