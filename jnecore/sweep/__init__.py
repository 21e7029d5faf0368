"""Studies: every subject x layer x setting of a study file as an ordinary result bundle.

- :func:`read_study` reads and checks a study file (TOML; format in :mod:`jnecore.sweep._studyfile`)
- :func:`expand_cells` lists its cells; :func:`run_sweep` runs those not done, on this machine
  (:func:`run_local`, ``jobs`` processes) or on a Ray cluster (:func:`run_ray`, imported only then)
- ``<study>/study.json`` records every cell's parameters, state, bundle and timings
  (:mod:`jnecore.sweep._state`); each cell's bundle manifest carries ``manifest["study"]``
"""

from ._cells import cell_id, expand_cells
from ._execute import cell_spec, run_cell
from ._local import run_local, threads_per_job
from ._ray import CONNECT_TIMEOUT, connect_ray, run_ray
from ._state import SCHEMA, STATE_FILE, STATES, init_state, read_state, study_lock, update_cell
from ._studyfile import SUBJECT_KEYS, TOP_KEYS, Study, read_study
from ._sweep import check_cells, run_sweep

__all__ = ["CONNECT_TIMEOUT", "SCHEMA", "STATES", "STATE_FILE", "SUBJECT_KEYS", "TOP_KEYS", "Study", "cell_id",
           "cell_spec", "check_cells", "connect_ray", "expand_cells", "init_state", "read_state", "read_study",
           "run_cell", "run_local", "run_ray", "run_sweep", "study_lock", "threads_per_job", "update_cell"]
