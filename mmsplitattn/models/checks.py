"""Argument checks shared by the modules: each raises a ValueError that names
the bad value and what is allowed."""


def check_int(name, value, minimum=1):
    """``value`` must be an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(
            f'{name} must be an integer >= {minimum}, got {value!r}')


def check_choice(name, value, allowed):
    """``value`` must be one of ``allowed``."""
    if value not in allowed:
        raise ValueError(
            f'{name} must be one of {sorted(allowed)}, got {value!r}')


def check_divisible(name, value, divisor_name, divisor):
    """``value`` must be divisible by ``divisor``."""
    if value % divisor != 0:
        raise ValueError(f'{name} ({value}) must be divisible by '
                         f'{divisor_name} ({divisor})')
