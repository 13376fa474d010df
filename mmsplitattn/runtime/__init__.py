"""Moved to :mod:`mmsplitattn.engine`; kept for the tools that still import it here."""
from mmsplitattn.engine import check_checkpoint, task_of  # noqa: F401
from mmsplitattn.engine.utils import prepare_torch_load  # noqa: F401
