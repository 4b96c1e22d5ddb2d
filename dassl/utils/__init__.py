"""Utilities (Dassl ``dassl.utils``): logging, seeding, file helpers, meters, checkpoint I/O, registry."""
from .errors import ConfigError, DataNotFoundError, UsageError
from .logger import close_logger, setup_logger
from .meters import AverageMeter, MetricMeter
from .registry import Registry
from .tools import (
    check_availability,
    check_isfile,
    collect_env_info,
    get_git_sha,
    listdir_nohidden,
    mkdir_if_missing,
    read_image,
    read_json,
    set_random_seed,
    tolist_if_not,
    write_json,
)
from .torchtools import (
    CheckpointNotFoundError,
    count_num_param,
    load_checkpoint,
    load_pretrained_weights,
    resume_from_checkpoint,
    save_checkpoint,
)

__all__ = [
    "AverageMeter",
    "CheckpointNotFoundError",
    "ConfigError",
    "DataNotFoundError",
    "MetricMeter",
    "Registry",
    "UsageError",
    "check_availability",
    "check_isfile",
    "close_logger",
    "collect_env_info",
    "count_num_param",
    "get_git_sha",
    "listdir_nohidden",
    "load_checkpoint",
    "load_pretrained_weights",
    "mkdir_if_missing",
    "read_image",
    "read_json",
    "resume_from_checkpoint",
    "save_checkpoint",
    "set_random_seed",
    "setup_logger",
    "tolist_if_not",
    "write_json",
]
