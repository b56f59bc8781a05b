# Source this file to build with cargo directly: it points the torch-sys build at the
# project-local virtualenv made by scripts/bootstrap.sh. Binaries need nothing at run time.
_gd_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export VIRTUAL_ENV="$(readlink -f "$_gd_root/.venv")"
export PATH="$VIRTUAL_ENV/bin:$PATH"
export LIBTORCH_USE_PYTORCH=1
unset _gd_root
