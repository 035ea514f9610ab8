"""Editing the services file (:mod:`vpc_requests._config.services_file`, the edit
half): concurrent editors as real processes under the file's lock, the
atomic replace keeping owner, group and mode, symlinks edited through,
hard links refused, and a file left byte-identical by every failure."""

from __future__ import annotations

import os
import pickle
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import filelock
import pytest
from helpers import reap

from vpc_requests import VPCService
from vpc_requests._cli.cli import main
from vpc_requests._config.services_file import (
    LockTimeout,
    ServiceInUse,
    ServicesFile,
    bindings_using,
    create_service,
    delete_service,
    lock_path,
    locked,
    lookup,
    read_services,
    refers_to,
    update_service,
    write_atomic,
)
from vpc_requests._errors import ConfigError

SERVICES = """\
# Services edited by five processes at once (keep this comment).

[[services]]
service_id = "a"
name = "a"
host = { ipv4 = "10.0.0.1" }

[[services]]
service_id = "b"
name = "b"
host = { ipv4 = "10.0.0.2" }

[[services]]
service_id = "c"
name = "c"
host = { ipv4 = "10.0.0.3" }
"""

#: Five edits of one file, each a different kind: all five must survive.
EDITS = (
    ("create", "n1", "--ipv4", "10.0.1.1"),
    ("create", "n2", "--hostname", "n2.internal"),
    ("update", "a", "--http-port", "8081"),
    ("update", "c", "--name", "c2"),
    ("delete", "b"),
)

#: Generous: five Python processes on a loaded 2-core machine.
DEADLINE = 120.0


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """A Worker folder whose wrangler file binds nothing (so ``delete`` needs
    no ``--force``) and a services file with services a, b and c."""
    (tmp_path / "wrangler.toml").write_text('name = "w"\n')
    (tmp_path / "vpc-services.toml").write_text(SERVICES)
    return tmp_path


_STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _no_editor_outlives_its_test() -> Iterator[None]:
    yield
    while _STARTED:
        reap(_STARTED.pop())


def start(folder: Path, edit: tuple[str, ...], index: int) -> tuple[subprocess.Popen[bytes], Path]:
    """``python -m vpc_requests service EDIT`` in ``folder``, stderr to a
    file; its lock timeout is longer than the test's deadlines, so that a
    test fails on its own deadline, saying what it waited for."""
    err = folder / f"stderr-{index}.txt"
    with err.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "vpc_requests", "service", *edit, "--lock-timeout", str(5 * DEADLINE)],
            cwd=folder, stdout=subprocess.DEVNULL, stderr=sink)
    _STARTED.append(process)
    return process, err


def until(condition: object, what: str) -> None:
    """Poll ``condition`` (a callable) until it holds; fail after :data:`DEADLINE`."""
    deadline = time.monotonic() + DEADLINE
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def assert_all_five_edits(path: Path) -> None:
    services = read_services(path).services
    assert sorted(s.name or "" for s in services.values()) == ["a", "c2", "n1", "n2"]
    assert services["a"].http_port == 8081
    assert services["c"].name == "c2"
    assert "b" not in services
    named = {s.name: s for s in services.values()}
    assert named["n1"].ipv4 == "10.0.1.1" and named["n2"].hostname == "n2.internal"
    assert path.read_text().startswith("# Services edited by five processes at once (keep this comment).")


def finish(processes: list[tuple[subprocess.Popen[bytes], Path]]) -> None:
    for process, err in processes:
        assert process.wait(timeout=DEADLINE) == 0, err.read_text()


# -- concurrent editors ---------------------------------------------------------------


def test_five_processes_released_together_lose_nothing(folder: Path) -> None:
    """The barrier is the lock itself: the test holds it while five editors
    start, waits until each has said that it is waiting for it, then lets
    them all go at once. Before the lock existed, about a third of such
    changes were lost (every process exiting 0)."""
    path = folder / "vpc-services.toml"
    barrier = filelock.FileLock(str(lock_path(path)))
    with barrier:
        processes = [start(folder, edit, index) for index, edit in enumerate(EDITS)]
        for process, err in processes:
            until(lambda err=err: b"waiting up to" in err.read_bytes(), f"{err.name} to wait for the lock")
            assert process.poll() is None  # blocked, not finished
        assert path.read_text() == SERVICES  # nothing written while the lock is held
    finish(processes)
    assert_all_five_edits(path)


def test_five_processes_started_at_once_lose_nothing(folder: Path) -> None:
    """The same five edits without a barrier: whatever the interleaving."""
    processes = [start(folder, edit, index) for index, edit in enumerate(EDITS)]
    finish(processes)
    assert_all_five_edits(folder / "vpc-services.toml")


def test_five_processes_through_a_symlink_and_directly_share_the_lock(folder: Path) -> None:
    """An editor that names the symlink and one that names the file take
    the same lock (beside the target), so they serialise too."""
    (folder / "link.toml").symlink_to("vpc-services.toml")
    processes = [start(folder, ("--services", "link.toml" if index % 2 else "vpc-services.toml", *edit), index)
                 for index, edit in enumerate(EDITS)]
    finish(processes)
    assert_all_five_edits(folder / "vpc-services.toml")
    assert (folder / "link.toml").is_symlink()


def test_an_edit_waits_for_the_lock_and_then_reads_the_file_afresh(folder: Path) -> None:
    """What the lock holder wrote before releasing it is kept: the waiting
    editor reads the file only once it holds the lock."""
    path = folder / "vpc-services.toml"
    with filelock.FileLock(str(lock_path(path))):
        process, err = start(folder, ("create", "late", "--ipv4", "10.0.9.9"), 0)
        until(lambda: b"waiting up to" in err.read_bytes(), "the editor to wait for the lock")
        with path.open("a") as handle:  # the holder's own edit
            handle.write('\n[[services]]\nservice_id = "held"\nname = "held"\nhost = { ipv4 = "10.0.8.8" }\n')
    finish([(process, err)])
    assert [s.name for s in read_services(path).services.values()] == ["a", "b", "c", "held", "late"]


def test_a_lock_held_too_long_is_an_error_line_exit_2_and_no_change(folder: Path) -> None:
    path = folder / "vpc-services.toml"
    with filelock.FileLock(str(lock_path(path))):
        done = subprocess.run(
            [sys.executable, "-m", "vpc_requests", "service", "create", "x", "--ipv4", "10.0.0.9",
             "--lock-timeout", "0.2"], cwd=folder, capture_output=True, text=True, timeout=DEADLINE, check=False)
    assert done.returncode == 2 and done.stdout == ""
    notice, error = done.stderr.splitlines()  # that it waits, then why it gave up: no traceback
    assert notice.startswith("vpc-requests: vpc-services.toml: another edit of this file is in progress")
    assert error.startswith("vpc-requests: error: vpc-services.toml: another edit held the lock")
    assert "for more than 0.2 s; nothing was changed" in error and "--lock-timeout SECONDS waits longer" in error
    assert path.read_text() == SERVICES


def test_the_lock_is_free_again_after_an_edit_and_after_a_failed_one(folder: Path) -> None:
    path = folder / "vpc-services.toml"
    with pytest.raises(ConfigError, match="no service 'nope'"):
        update_service(path, "nope", http_port=81)
    update_service(path, "a", http_port=81)
    with locked(path, timeout=30):  # not left held by either edit (a held lock: LockTimeout)
        pass


def test_library_edit_times_out_with_lock_timeout(folder: Path) -> None:
    path = folder / "vpc-services.toml"
    told: list[str] = []
    with filelock.FileLock(str(lock_path(path))):
        with pytest.raises(LockTimeout, match=r"another edit held the lock .* for more than 0.05 s") as caught:
            delete_service(path, "a", lock_timeout=0.05, waiting=told.append)
    assert isinstance(caught.value, ConfigError) and caught.value.path == str(path)
    assert len(told) == 1 and "waiting up to 0.05 s" in told[0]
    assert path.read_text() == SERVICES


def test_no_waiting_notice_when_the_lock_is_free(folder: Path) -> None:
    told: list[str] = []
    create_service(folder / "vpc-services.toml", VPCService(name="d", ipv4="10.0.0.4"), waiting=told.append)
    assert told == []


@pytest.mark.parametrize(("file_mode", "lock_mode"), [(0o660, 0o660), (0o604, 0o604), (0o400, 0o600)])
def test_the_lock_file_can_be_written_by_whoever_may_write_the_file(
        folder: Path, file_mode: int, lock_mode: int) -> None:
    """A group-writable services file gets a group-writable lock file, so a
    second member of the group is not locked out by the first one's umask."""
    path = folder / "vpc-services.toml"
    os.chmod(path, file_mode)
    with locked(path):
        pass
    assert stat.S_IMODE(lock_path(path).stat().st_mode) == lock_mode


def test_lock_file_sits_beside_the_symlink_target(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "link.toml").symlink_to(Path("real") / "services.toml")
    assert lock_path(tmp_path / "link.toml") == (tmp_path / "real" / ".services.toml.lock").resolve()


# -- the atomic replace -----------------------------------------------------------------


def edit_cli(folder: Path, *args: str) -> int:
    return main(["--cwd", str(folder), "service", *args])


def other_owner() -> tuple[int, int]:
    """An owner and group this process may give a file: nobody's as root,
    else ours with a supplementary group when we have one."""
    if os.geteuid() == 0:
        return 65534, 65534
    groups = [group for group in os.getgroups() if group != os.getegid()]
    return os.geteuid(), (groups[0] if groups else os.getegid())


def test_edit_keeps_owner_group_and_mode(folder: Path) -> None:
    path = folder / "vpc-services.toml"
    uid, gid = other_owner()
    os.chown(path, uid, gid)
    os.chmod(path, 0o604)
    assert edit_cli(folder, "update", "a", "--http-port", "81") == 0
    after = path.stat()
    assert (after.st_uid, after.st_gid, stat.S_IMODE(after.st_mode)) == (uid, gid, 0o604)
    assert read_services(path).services["a"].http_port == 81


def test_an_owner_that_cannot_be_kept_refuses_the_edit(
        folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """As a user who may not give the new file the old one's owner: the edit
    is refused, rather than silently changing who owns the file."""
    path = folder / "vpc-services.toml"
    real_stat = os.stat

    def stat_owned_by_someone_else(name: object, *args: object, **kwargs: object) -> os.stat_result:
        found = real_stat(name, *args, **kwargs)  # type: ignore[arg-type]
        if os.fspath(name) != str(path):  # type: ignore[call-overload]
            return found
        fields = list(found[:10])
        fields[4] += 4242  # st_uid
        return os.stat_result(fields)

    def refuse(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "stat", stat_owned_by_someone_else)
    monkeypatch.setattr(os, "fchown", refuse)
    assert edit_cli(folder, "update", "a", "--http-port", "81") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot keep the file's owner and group" in err
    monkeypatch.undo()
    assert path.read_text() == SERVICES
    assert not list(folder.glob(".*.tmp"))


def test_a_symlink_is_edited_through_and_stays_a_link(tmp_path: Path) -> None:
    (tmp_path / "shared").mkdir()
    target = tmp_path / "shared" / "vpc-services.toml"
    target.write_text(SERVICES)
    (tmp_path / "project").mkdir()
    link = tmp_path / "project" / "vpc-services.toml"
    link.symlink_to(Path("..") / "shared" / "vpc-services.toml")
    (tmp_path / "project" / "wrangler.toml").write_text('name = "w"\n')
    assert edit_cli(tmp_path / "project", "create", "d", "--ipv4", "10.0.0.4") == 0
    assert link.is_symlink() and os.readlink(link) == os.path.join("..", "shared", "vpc-services.toml")
    assert "d" in {s.name for s in read_services(target).services.values()}
    assert sorted(os.listdir(tmp_path / "project")) == ["vpc-services.toml", "wrangler.toml"]
    assert sorted(os.listdir(tmp_path / "shared")) == [".vpc-services.toml.lock", "vpc-services.toml"]


def test_a_failed_edit_through_a_symlink_leaves_link_and_target(tmp_path: Path) -> None:
    target = tmp_path / "real.toml"
    target.write_text(SERVICES)
    link = tmp_path / "vpc-services.toml"
    link.symlink_to("real.toml")
    (tmp_path / "wrangler.toml").write_text('name = "w"\n')
    assert edit_cli(tmp_path, "create", "a", "--ipv4", "10.0.0.4") == 2  # the name is taken
    assert link.is_symlink() and target.read_text() == SERVICES


def test_a_hard_linked_file_is_refused_and_both_names_stay(
        folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Replacing one name of a hard-linked file would leave the other with
    the old contents: refused, saying why."""
    path = folder / "vpc-services.toml"
    os.link(path, folder / "backup.toml")
    assert edit_cli(folder, "update", "a", "--http-port", "81") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the file has 2 hard links" in err and "nothing was changed" in err
    assert path.read_text() == SERVICES and (folder / "backup.toml").read_text() == SERVICES
    assert path.stat().st_ino == (folder / "backup.toml").stat().st_ino
    (folder / "backup.toml").unlink()  # the twin: with one name, the same edit works
    assert edit_cli(folder, "update", "a", "--http-port", "81") == 0
    assert read_services(path).services["a"].http_port == 81


@pytest.mark.parametrize("failing", ["replace", "fsync"])
def test_a_write_that_fails_leaves_the_file_byte_identical(
        folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], failing: str) -> None:
    path = folder / "vpc-services.toml"
    before = path.read_bytes()

    def disk_full(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, failing, disk_full)
    assert edit_cli(folder, "create", "d", "--ipv4", "10.0.0.4") == 2
    monkeypatch.undo()
    assert "No space left on device" in capsys.readouterr().err
    assert path.read_bytes() == before
    assert not list(folder.glob(".*.tmp"))


def test_a_write_that_fails_half_way_leaves_the_file_byte_identical(folder: Path) -> None:
    """The text cannot be encoded after its first part was written."""
    path = folder / "vpc-services.toml"
    with pytest.raises(UnicodeEncodeError):
        write_atomic(path, SERVICES + "# \ud800\n")
    assert path.read_text() == SERVICES
    assert not list(folder.glob(".*.tmp"))


def test_a_new_file_gets_the_umask_mode_and_no_temporary_stays(tmp_path: Path) -> None:
    path = tmp_path / "new.toml"
    write_atomic(path, "# new\n")
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    assert sorted(os.listdir(tmp_path)) == ["new.toml"]


# -- deleting a service that bindings still name ----------------------------------------------

WRANGLER = """\
[[vpc_services]]
binding = "A"
service_id = "a"

[env.dev]
vpc_services = [{ binding = "A_DEV", service = "a" }, { binding = "C_DEV", service_id = "c" }]

[env.empty]
name = "no bindings here"
"""


def test_bindings_using_looks_at_every_environment(folder: Path) -> None:
    (folder / "wrangler.toml").write_text(WRANGLER)
    services = read_services(folder / "vpc-services.toml").services
    assert bindings_using(folder / "wrangler.toml", services["a"]) == ["A", "A_DEV [env.dev]"]
    assert bindings_using(folder / "wrangler.toml", services["c"]) == ["C_DEV [env.dev]"]
    assert bindings_using(folder / "wrangler.toml", services["b"]) == []


def test_delete_of_a_bound_service_raises_service_in_use(folder: Path) -> None:
    (folder / "wrangler.toml").write_text(WRANGLER)
    path = folder / "vpc-services.toml"
    with pytest.raises(ServiceInUse, match=r"is still named by bindings A, A_DEV \[env.dev\]") as caught:
        delete_service(path, "a", bound_in=folder / "wrangler.toml")
    assert caught.value.bindings == ("A", "A_DEV [env.dev]") and isinstance(caught.value, ConfigError)
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (type(copy), str(copy), copy.bindings) == (ServiceInUse, str(caught.value), caught.value.bindings)
    assert path.read_text() == SERVICES
    assert delete_service(path, "b", bound_in=folder / "wrangler.toml").name == "b"  # the twin: unbound
    assert delete_service(path, "a").name == "a"  # no bound_in: not looked at


def test_a_reference_by_id_ignores_a_service_name_beside_it() -> None:
    a = VPCService(hostname="a.internal", service_id="id-a", name="shared")
    b = VPCService(hostname="b.internal", service_id="id-b", name="b")
    services = ServicesFile("services.toml", {"id-a": a, "id-b": b}, {})
    assert lookup(services, "id-a", "b") == [a]
    assert not refers_to(b, "id-a", "b")  # the binding is bound to id-a, whatever its service says


def test_a_reference_by_name_finds_every_service_of_that_name() -> None:
    a = VPCService(hostname="a.internal", service_id="id-a", name="shared")
    b = VPCService(hostname="b.internal", service_id="id-b", name="shared")
    services = ServicesFile("services.toml", {"id-a": a, "id-b": b}, {})
    assert lookup(services, None, "shared") == [a, b]
    assert lookup(services, None, "id-a") == []  # a name is never matched against ids
    assert lookup(services, None, None) == []
