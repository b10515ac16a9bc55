# Sourced by scripts/test.sh: installs and starts the services the
# integration tests of the distributed backend need (MariaDB, and versitygw
# as the S3-compatible store), then exports their PROVLOG_TEST_* variables.
# Without them the tests skip, unless CI is set, where they fail.
# Stop both with: scripts/ci/install-mariadb.sh stop; scripts/ci/install-versitygw.sh stop
_provlog_ci_root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
"$_provlog_ci_root/scripts/ci/install-mariadb.sh"
"$_provlog_ci_root/scripts/ci/install-versitygw.sh"
# shellcheck disable=SC1091
source "${PROVLOG_CI_DIR:-/tmp/provlog-ci}/mariadb.env"
# shellcheck disable=SC1091
source "${PROVLOG_CI_DIR:-/tmp/provlog-ci}/versitygw.env"
unset _provlog_ci_root
