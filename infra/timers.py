"""A nameko timer whose interval is a setting of the service, not a constant in the code."""

from nameko.timer import Timer


class PeriodicTask(Timer):
    def __init__(self, setting: str, default: float, **kwargs):
        self.setting = setting
        self.default = default
        super().__init__(interval=default, **kwargs)

    def setup(self) -> None:
        settings = self.container.config.get("SERVICE_SETTINGS")
        self.interval = getattr(settings, self.setting, self.default)
        super().setup()


periodic = PeriodicTask.decorator
