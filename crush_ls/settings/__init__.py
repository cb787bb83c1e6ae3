"""What a workspace is configured with: `initializationOptions` over Crush's crush.json files.

`model` is the leaf (one model as configured), `crush_json` reads the files,
`resolve` turns the options as sent into a workspace's resolved `Settings`.
"""

from .model import ModelConfig, ProviderName
from .resolve import (
    DataDirectoryRefused,
    InitOptions,
    PermissionSettings,
    Settings,
    data_directory_path,
    load_settings,
    parse_init_options,
)

__all__ = ["DataDirectoryRefused", "InitOptions", "ModelConfig", "PermissionSettings", "ProviderName", "Settings",
           "data_directory_path", "load_settings", "parse_init_options"]
