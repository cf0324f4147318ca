"""The storage contract: one test suite every :class:`~keymgmt.storage.Backend` must pass.

Exported so that third-party backends run the very suite the built-in ones
do. Subclass :class:`BackendContract` in a module pytest collects (the class
name must start with ``Test``) and implement :meth:`~BackendContract.make_backend`::

    from keymgmt.testing.contract import BackendContract

    class TestMyBackend(BackendContract):
        def make_backend(self) -> MyBackend:
            return MyBackend(...)          # a fresh, empty store each call

Use an autouse fixture in the subclass for set-up the factory needs (a temp
folder, a server address) and for clean-up. Override
:meth:`~BackendContract.open_again` when two handles can share one store (two
processes on one file or database), to run the multi-handle tests too.

What the suite checks (the contract in :mod:`keymgmt.storage`):

* revisions start at 1 and grow by one on every write; ``0`` means absent;
* a compare-and-set mismatch raises :class:`~keymgmt.errors.ConflictError`
  and writes **nothing** of the batch, not even the sequence number;
* batches are atomic and share one sequence number;
* ``list`` filters by kind and prefix, orders by name (code point order), and
  with ``after_seq`` returns only later writes, ordered by ``seq``;
* ``generation()`` is the latest ``seq``, strictly increasing per commit;
* delete semantics (compare-and-set, re-creation starts over at revision 1);
* a batch naming one record twice is refused with
  :class:`~keymgmt.errors.InvalidArgumentError`;
* a closed backend raises :class:`~keymgmt.errors.StoreError`;
* checks (:class:`~keymgmt.storage.Check`, :class:`~keymgmt.storage.CheckList`)
  write nothing, pass on an unchanged record or listing and fail the whole
  batch with :class:`~keymgmt.errors.ConflictError` on a changed, created or
  deleted one, judged on the store as it was before the batch's writes;
* threads racing on one record with compare-and-set lose no update;
* a Hypothesis state machine drives random batches against a dict model.

Needs ``pytest`` and ``hypothesis`` (the ``testing`` extra).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import ClassVar

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    rule,
    run_state_machine_as_test,
)

from keymgmt.errors import ConflictError, InvalidArgumentError, StoreError
from keymgmt.storage import ANY, Backend, Check, CheckList, Delete, Operation, Put, Record

__all__ = ["BackendContract", "BackendModelMachine"]

#: Names that sort differently by code point, by locale and by case.
_AWKWARD_NAMES = ("a", "B", "a/b", "a-b", "ab", "é", "z", "~", "Z", "ä", "日本", "a b")


class BackendContract:
    """The storage contract as pytest tests; subclass and implement :meth:`make_backend`."""

    #: Threads in the concurrency test, and increments each makes.
    concurrency_threads: ClassVar[int] = 4
    concurrency_increments: ClassVar[int] = 25
    #: Hypothesis budget for the state machine (capped by the active profile).
    model_examples: ClassVar[int] = 25
    model_steps: ClassVar[int] = 20

    def make_backend(self) -> Backend:
        """Return a new backend on a fresh, empty store. Called many times per test."""
        raise NotImplementedError

    def open_again(self, backend: Backend) -> Backend | None:
        """Return a second, independent handle on ``backend``'s store, or None if impossible."""
        return None

    @pytest.fixture
    def backend(self) -> Iterator[Backend]:
        """A fresh backend, closed after the test."""
        made = self.make_backend()
        try:
            yield made
        finally:
            made.close()

    # -- revisions ---------------------------------------------------------------

    def test_get_of_a_missing_record_is_none(self, backend: Backend) -> None:
        assert backend.get("k", "missing") is None

    def test_backend_satisfies_the_protocol(self, backend: Backend) -> None:
        assert isinstance(backend, Backend)

    def test_put_creates_revision_one_and_get_returns_it(self, backend: Backend) -> None:
        (written,) = backend.commit([Put("k", "a", b"data", 0)])
        assert (written.kind, written.name, written.data, written.revision) == (
            "k",
            "a",
            b"data",
            1,
        )
        assert written.seq > 0
        assert backend.get("k", "a") == written

    def test_each_write_increments_the_revision(self, backend: Backend) -> None:
        backend.commit([Put("k", "a", b"1", 0)])
        backend.commit([Put("k", "a", b"2", 1)])
        (third,) = backend.commit([Put("k", "a", b"3", 2)])
        assert third.revision == 3
        assert backend.get("k", "a") == third

    def test_unconditional_put_overwrites_any_revision(self, backend: Backend) -> None:
        backend.commit([Put("k", "a", b"1", ANY)])
        (second,) = backend.commit([Put("k", "a", b"2", ANY)])
        assert second.revision == 2
        assert _data(backend, "k", "a") == b"2"

    @pytest.mark.parametrize("data", [b"", b"\x00\xff" * 3, bytes(range(256)), b"x" * 100_000])
    def test_data_round_trips_byte_for_byte(self, backend: Backend, data: bytes) -> None:
        backend.commit([Put("k", "a", data, 0)])
        assert _data(backend, "k", "a") == data

    def test_same_name_in_different_kinds_is_a_different_record(self, backend: Backend) -> None:
        backend.commit([Put("k1", "a", b"1", 0), Put("k2", "a", b"2", 0)])
        assert _data(backend, "k1", "a") == b"1"
        assert _data(backend, "k2", "a") == b"2"

    # -- compare-and-set -----------------------------------------------------------

    def test_stale_expected_revision_raises_conflict_and_writes_nothing(
        self, backend: Backend
    ) -> None:
        backend.commit([Put("k", "a", b"1", 0)])
        generation = backend.generation()
        with pytest.raises(ConflictError) as raised:
            backend.commit([Put("k", "b", b"new", 0), Put("k", "a", b"stale", 0)])
        assert raised.value.kind == "k"  # type: ignore[attr-defined]
        assert raised.value.name == "a"  # type: ignore[attr-defined]
        assert backend.get("k", "b") is None
        assert _data(backend, "k", "a") == b"1"
        assert backend.generation() == generation

    def test_expected_zero_refuses_an_existing_record(self, backend: Backend) -> None:
        backend.commit([Put("k", "a", b"1", 0)])
        with pytest.raises(ConflictError):
            backend.commit([Put("k", "a", b"2", 0)])

    def test_expected_revision_of_a_missing_record_conflicts(self, backend: Backend) -> None:
        with pytest.raises(ConflictError):
            backend.commit([Put("k", "a", b"1", 1)])
        assert backend.get("k", "a") is None
        assert backend.generation() == 0

    # -- batches ---------------------------------------------------------------------

    def test_a_batch_lands_whole_with_one_sequence_number(self, backend: Backend) -> None:
        written = backend.commit([Put("k", f"r{i}", bytes([i]), 0) for i in range(5)])
        assert [r.name for r in written] == [f"r{i}" for i in range(5)]
        assert {r.seq for r in written} == {backend.generation()}
        assert [r.name for r in backend.list("k")] == [f"r{i}" for i in range(5)]

    def test_conflict_late_in_a_batch_rolls_back_earlier_operations(self, backend: Backend) -> None:
        backend.commit([Put("k", "a", b"1", 0), Put("k", "z", b"1", 0)])
        before = backend.list("k")
        with pytest.raises(ConflictError):
            backend.commit([Put("k", "a", b"2", 1), Delete("k", "z", 1), Put("k", "z2", b"", 5)])
        assert backend.list("k") == before

    def test_a_batch_naming_a_record_twice_is_refused(self, backend: Backend) -> None:
        with pytest.raises(InvalidArgumentError):
            backend.commit([Put("k", "a", b"1", ANY), Delete("k", "a", ANY)])
        assert backend.get("k", "a") is None
        assert backend.generation() == 0

    def test_empty_kind_or_name_is_refused(self, backend: Backend) -> None:
        with pytest.raises(InvalidArgumentError):
            backend.commit([Put("", "a", b"1", ANY)])
        with pytest.raises(InvalidArgumentError):
            backend.commit([Put("k", "", b"1", ANY)])

    def test_kinds_and_names_that_are_not_valid_unicode_are_refused(self, backend: Backend) -> None:
        bad = "lone \ud800 surrogate"
        with pytest.raises(InvalidArgumentError):
            backend.commit([Put("k", bad, b"", ANY)])
        with pytest.raises(InvalidArgumentError):
            backend.commit([Delete(bad, "a", ANY)])
        assert backend.generation() == 0
        # Reads may answer "nothing there" or refuse; never a foreign exception.
        for read in (lambda: backend.get("k", bad), lambda: backend.list("k", prefix=bad)):
            try:
                found = read()
            except InvalidArgumentError:
                continue
            assert not found

    def test_an_empty_batch_writes_nothing(self, backend: Backend) -> None:
        assert backend.commit([]) == []
        assert backend.generation() == 0

    # -- listing -----------------------------------------------------------------------

    def test_list_filters_by_kind_and_prefix_and_orders_by_name(self, backend: Backend) -> None:
        backend.commit([Put("k", n, n.encode(), 0) for n in ("b/2", "a/1", "b/1", "c", "b")])
        backend.commit([Put("other", "b/3", b"", 0)])
        assert [r.name for r in backend.list("k")] == ["a/1", "b", "b/1", "b/2", "c"]
        assert [r.name for r in backend.list("k", prefix="b/")] == ["b/1", "b/2"]
        assert [r.name for r in backend.list("k", prefix="b")] == ["b", "b/1", "b/2"]
        assert backend.list("k", prefix="zz") == []
        assert backend.list("nothing") == []

    # -- enumeration (kinds, scan) -------------------------------------------------------

    def test_kinds_names_every_kind_that_holds_a_record_sorted(self, backend: Backend) -> None:
        assert backend.kinds() == []
        backend.commit([Put(k, "a", b"", 0) for k in ("zeta", "alpha", "é", "mid")])
        backend.commit([Put("alpha", "b", b"", 0)])
        assert backend.kinds() == ["alpha", "mid", "zeta", "é"]

    def test_kinds_forgets_a_kind_whose_last_record_was_deleted(self, backend: Backend) -> None:
        backend.commit([Put("gone", "a", b"", 0), Put("kept", "a", b"", 0)])
        backend.commit([Delete("gone", "a", 1)])
        assert backend.kinds() == ["kept"]

    def test_scan_pages_through_a_kind_by_code_point(self, backend: Backend) -> None:
        backend.commit([Put("k", n, n.encode(), 0) for n in _AWKWARD_NAMES])
        backend.commit([Put("other", "a", b"", 0)])
        seen: list[str] = []
        after = ""
        while True:
            page = backend.scan("k", after=after, limit=5)
            assert len(page) <= 5
            seen += [r.name for r in page]
            if len(page) < 5:
                break
            after = page[-1].name
        assert seen == sorted(_AWKWARD_NAMES)
        assert backend.scan("k", after="ä", limit=100) == [
            r for r in backend.list("k") if r.name > "ä"
        ]

    def test_scan_of_an_empty_kind_is_empty(self, backend: Backend) -> None:
        assert backend.scan("nothing", limit=10) == []

    def test_scan_refuses_an_after_that_is_not_a_name(self, backend: Backend) -> None:
        with pytest.raises(InvalidArgumentError, match="after"):
            backend.scan("k", after=3, limit=1)  # type: ignore[arg-type]

    @pytest.mark.parametrize("limit", [0, -1, True, 2.5])
    def test_scan_refuses_a_limit_below_one(self, backend: Backend, limit: object) -> None:
        with pytest.raises(InvalidArgumentError, match="limit"):
            backend.scan("k", limit=limit)  # type: ignore[arg-type]

    def test_list_orders_names_by_code_point(self, backend: Backend) -> None:
        backend.commit([Put("k", n, b"", 0) for n in _AWKWARD_NAMES])
        assert [r.name for r in backend.list("k")] == sorted(_AWKWARD_NAMES)

    def test_prefix_is_literal_not_a_pattern(self, backend: Backend) -> None:
        backend.commit([Put("k", n, b"", 0) for n in ("a%b", "axb", "a_b", "a.b", "a*b")])
        assert [r.name for r in backend.list("k", prefix="a%")] == ["a%b"]
        assert [r.name for r in backend.list("k", prefix="a_")] == ["a_b"]
        assert [r.name for r in backend.list("k", prefix="a.")] == ["a.b"]

    def test_list_after_seq_returns_later_writes_in_seq_order(self, backend: Backend) -> None:
        backend.commit([Put("k", "c", b"1", 0)])
        mark = backend.generation()
        backend.commit([Put("k", "b", b"1", 0)])
        backend.commit([Put("k", "a", b"1", 0)])
        backend.commit([Put("k", "c", b"2", 1)])
        later = backend.list("k", after_seq=mark)
        assert [r.name for r in later] == ["b", "a", "c"]
        assert [r.seq for r in later] == sorted(r.seq for r in later)
        assert all(r.seq > mark for r in later)
        assert backend.list("k", after_seq=backend.generation()) == []

    def test_list_after_seq_honours_the_prefix(self, backend: Backend) -> None:
        backend.commit([Put("k", "x/1", b"", 0), Put("k", "y/1", b"", 0)])
        assert [r.name for r in backend.list("k", prefix="y/", after_seq=0)] == ["y/1"]
        assert [r.name for r in backend.list("k", prefix="y/", after_seq=1)] == []

    # -- generation -----------------------------------------------------------------------

    def test_generation_starts_at_zero_and_grows_with_every_commit(self, backend: Backend) -> None:
        assert backend.generation() == 0
        seen = [0]
        for i in range(5):
            (record,) = backend.commit([Put("k", f"r{i}", b"", 0)])
            assert record.seq == backend.generation()
            seen.append(record.seq)
        backend.commit([Delete("k", "r0", 1)])
        seen.append(backend.generation())
        assert seen == sorted(set(seen))

    def test_generation_is_the_largest_seq_of_any_record(self, backend: Backend) -> None:
        backend.commit([Put("a", "1", b"", 0)])
        backend.commit([Put("b", "1", b"", 0)])
        largest = max(r.seq for kind in ("a", "b") for r in backend.list(kind))
        assert backend.generation() == largest

    # -- deletes ---------------------------------------------------------------------------

    def test_delete_removes_the_record(self, backend: Backend) -> None:
        backend.commit([Put("k", "a", b"1", 0)])
        assert backend.commit([Delete("k", "a", 1)]) == []
        assert backend.get("k", "a") is None
        assert backend.list("k") == []

    def test_delete_with_a_stale_revision_conflicts(self, backend: Backend) -> None:
        backend.commit([Put("k", "a", b"1", 0)])
        backend.commit([Put("k", "a", b"2", 1)])
        with pytest.raises(ConflictError):
            backend.commit([Delete("k", "a", 1)])
        assert _data(backend, "k", "a") == b"2"

    def test_unconditional_delete_of_a_missing_record_is_a_no_op(self, backend: Backend) -> None:
        backend.commit([Delete("k", "never", ANY)])
        assert backend.get("k", "never") is None

    def test_a_recreated_record_starts_again_at_revision_one(self, backend: Backend) -> None:
        backend.commit([Put("k", "a", b"1", 0)])
        backend.commit([Put("k", "a", b"2", 1)])
        backend.commit([Delete("k", "a", 2)])
        (again,) = backend.commit([Put("k", "a", b"3", 0)])
        assert again.revision == 1

    def test_deleted_records_do_not_show_up_after_seq(self, backend: Backend) -> None:
        backend.commit([Put("k", "a", b"1", 0), Put("k", "b", b"1", 0)])
        mark = backend.generation()
        backend.commit([Delete("k", "a", 1)])
        assert backend.list("k", after_seq=mark) == []

    # -- closing ---------------------------------------------------------------------------

    def test_a_closed_backend_raises_store_error(self) -> None:
        made = self.make_backend()
        made.commit([Put("k", "a", b"1", 0)])
        made.close()
        made.close()  # idempotent
        with pytest.raises(StoreError):
            made.get("k", "a")
        with pytest.raises(StoreError):
            made.list("k")
        with pytest.raises(StoreError):
            made.commit([Put("k", "b", b"1", 0)])
        with pytest.raises(StoreError):
            made.generation()

    # -- concurrency ---------------------------------------------------------------------------

    def test_threads_racing_with_compare_and_set_lose_no_update(self, backend: Backend) -> None:
        backend.commit([Put("k", "counter", b"0", 0)])
        errors: list[BaseException] = []
        seqs: list[int] = []
        seqs_lock = threading.Lock()

        def work() -> None:
            try:
                for _ in range(self.concurrency_increments):
                    while True:
                        current = backend.get("k", "counter")
                        assert current is not None
                        value = int(current.data) + 1
                        try:
                            (done,) = backend.commit(
                                [Put("k", "counter", str(value).encode(), current.revision)]
                            )
                        except ConflictError:
                            continue
                        with seqs_lock:
                            seqs.append(done.seq)
                        break
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=work) for _ in range(self.concurrency_threads)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        total = self.concurrency_threads * self.concurrency_increments
        final = backend.get("k", "counter")
        assert final is not None
        assert int(final.data) == total
        assert final.revision == total + 1
        assert len(set(seqs)) == total

    def test_threads_writing_distinct_records_all_land(self, backend: Backend) -> None:
        def work(worker: int) -> None:
            for i in range(self.concurrency_increments):
                backend.commit([Put("k", f"w{worker}/{i}", b"x", 0)])

        threads = [
            threading.Thread(target=work, args=(w,)) for w in range(self.concurrency_threads)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        records = backend.list("k")
        assert len(records) == self.concurrency_threads * self.concurrency_increments
        assert len({r.seq for r in records}) == len(records)
        assert backend.generation() == max(r.seq for r in records)

    def test_a_reader_following_generation_and_after_seq_misses_no_write(
        self, backend: Backend
    ) -> None:
        """What ``Store.sync`` relies on: read ``generation()``, then ``list(after_seq=)``."""
        done = threading.Event()
        seen: set[str] = set()

        def follow(mark: int) -> int:
            generation = backend.generation()
            seen.update(r.name for r in backend.list("k", after_seq=mark))
            return generation

        def write(worker: int) -> None:
            for i in range(self.concurrency_increments):
                backend.commit([Put("k", f"w{worker}/{i}", b"x", 0)])

        writers = [
            threading.Thread(target=write, args=(w,)) for w in range(self.concurrency_threads)
        ]
        for thread in writers:
            thread.start()
        mark = 0
        while not done.is_set():
            mark = follow(mark)
            if not any(thread.is_alive() for thread in writers):
                done.set()
        for thread in writers:
            thread.join()
        follow(mark)
        assert len(seen) == self.concurrency_threads * self.concurrency_increments

    # -- checks (what a transaction only read) --------------------------------------------------

    def test_a_check_of_the_current_revision_lets_the_batch_land(self, backend: Backend) -> None:
        backend.commit([Put("k", "read", b"r", 0)])
        written = backend.commit([Check("k", "read", 1), Put("k", "b", b"w", 0)])
        assert [(r.name, r.revision) for r in written] == [("b", 1)]
        assert backend.get("k", "read") == Record("k", "read", b"r", 1, 1)  # untouched

    def test_a_check_that_a_record_is_absent_passes_while_it_is(self, backend: Backend) -> None:
        backend.commit([Check("k", "missing", 0), Put("k", "b", b"w", 0)])
        assert backend.get("k", "missing") is None
        assert _data(backend, "k", "b") == b"w"

    def test_a_check_of_a_changed_record_conflicts_and_writes_nothing(
        self, backend: Backend
    ) -> None:
        backend.commit([Put("k", "read", b"r", 0)])
        backend.commit([Put("k", "read", b"r2", 1)])
        generation = backend.generation()
        with pytest.raises(ConflictError) as raised:
            backend.commit([Put("k", "b", b"w", 0), Check("k", "read", 1)])
        assert (raised.value.kind, raised.value.name) == ("k", "read")  # type: ignore[attr-defined]
        assert backend.get("k", "b") is None
        assert backend.generation() == generation

    def test_a_check_of_a_deleted_record_conflicts(self, backend: Backend) -> None:
        backend.commit([Put("k", "read", b"r", 0)])
        backend.commit([Delete("k", "read", 1)])
        with pytest.raises(ConflictError):
            backend.commit([Check("k", "read", 1), Put("k", "b", b"w", 0)])
        assert backend.get("k", "b") is None

    def test_a_check_that_a_record_is_absent_conflicts_once_it_exists(
        self, backend: Backend
    ) -> None:
        backend.commit([Put("k", "read", b"r", 0)])
        with pytest.raises(ConflictError):
            backend.commit([Check("k", "read", 0), Put("k", "b", b"w", 0)])
        assert backend.get("k", "b") is None

    def test_a_failed_check_late_in_a_batch_rolls_back_its_writes(self, backend: Backend) -> None:
        backend.commit([Put("k", "a", b"1", 0), Put("k", "read", b"r", 0)])
        backend.commit([Put("k", "read", b"r2", 1)])
        with pytest.raises(ConflictError):
            backend.commit([Put("k", "a", b"2", 1), Delete("k", "c"), Check("k", "read", 1)])
        assert backend.get("k", "a") == Record("k", "a", b"1", 1, 1)

    def test_checks_alone_write_nothing_and_use_no_sequence_number(self, backend: Backend) -> None:
        backend.commit([Put("k", "read", b"r", 0)])
        assert backend.commit([Check("k", "read", 1), CheckList("k", "", 1, 1)]) == []
        assert backend.generation() == 1
        with pytest.raises(ConflictError):
            backend.commit([Check("k", "read", 2)])

    def test_a_batch_that_checks_and_writes_one_record_is_refused(self, backend: Backend) -> None:
        with pytest.raises(InvalidArgumentError):
            backend.commit([Check("k", "a", 0), Put("k", "a", b"v", 0)])
        assert backend.generation() == 0

    @pytest.mark.parametrize(
        "check",
        [
            Check("k", "a", ANY),
            Check("k", "", 0),
            Check("k", "a", True),
            CheckList("", "", 0, 0),
            CheckList("k", "", -1, 0),
            CheckList("k", "", 0, -1),
            CheckList("k", 5, 0, 0),  # type: ignore[arg-type]
        ],
    )
    def test_malformed_checks_are_refused(self, backend: Backend, check: Operation) -> None:
        with pytest.raises(InvalidArgumentError):
            backend.commit([check, Put("k", "b", b"w", 0)])
        assert backend.generation() == 0

    # -- listing checks (phantoms) --

    def _listing(self, backend: Backend, kind: str, prefix: str) -> CheckList:
        found = backend.list(kind, prefix=prefix)
        return CheckList(kind, prefix, len(found), max((r.seq for r in found), default=0))

    def test_a_listing_check_of_an_unchanged_listing_passes(self, backend: Backend) -> None:
        backend.commit([Put("k", "a/1", b"1", 0), Put("k", "a/2", b"2", 0)])
        backend.commit([Put("k", "b", b"x", 0), Put("other", "a/3", b"x", 0)])
        listing = self._listing(backend, "k", "a/")
        assert (listing.count, listing.max_seq) == (2, 1)
        backend.commit([Put("k", "b", b"y", 1), Put("other", "a/4", b"y", 0)])  # outside it
        backend.commit([listing, Put("k", "c", b"w", 0)])
        assert _data(backend, "k", "c") == b"w"

    def test_a_listing_check_of_an_empty_listing_passes_while_it_stays_empty(
        self, backend: Backend
    ) -> None:
        listing = self._listing(backend, "k", "a/")
        backend.commit([Put("k", "b", b"x", 0)])
        backend.commit([listing, Put("k", "c", b"w", 0)])
        backend.commit([Put("k", "a/1", b"x", 0)])
        with pytest.raises(ConflictError):
            backend.commit([listing, Put("k", "d", b"w", 0)])

    def test_a_record_created_under_a_listed_prefix_fails_the_check(self, backend: Backend) -> None:
        backend.commit([Put("k", "a/1", b"1", 0)])
        listing = self._listing(backend, "k", "a/")
        backend.commit([Put("k", "a/2", b"phantom", 0)])
        with pytest.raises(ConflictError) as raised:
            backend.commit([listing, Put("k", "c", b"w", 0)])
        assert (raised.value.kind, raised.value.name) == ("k", "a/")  # type: ignore[attr-defined]
        assert backend.get("k", "c") is None

    def test_a_listed_record_changed_fails_the_check(self, backend: Backend) -> None:
        backend.commit([Put("k", "a/1", b"1", 0), Put("k", "a/2", b"2", 0)])
        listing = self._listing(backend, "k", "a/")
        backend.commit([Put("k", "a/2", b"3", 1)])
        with pytest.raises(ConflictError):
            backend.commit([listing, Put("k", "c", b"w", 0)])

    def test_a_listed_record_deleted_fails_the_check(self, backend: Backend) -> None:
        backend.commit([Put("k", "a/1", b"1", 0), Put("k", "a/2", b"2", 0)])
        listing = self._listing(backend, "k", "a/")
        backend.commit([Delete("k", "a/2", 1)])
        with pytest.raises(ConflictError):
            backend.commit([listing, Put("k", "c", b"w", 0)])

    def test_a_listed_record_deleted_and_another_created_fails_the_check(
        self, backend: Backend
    ) -> None:
        backend.commit([Put("k", "a/1", b"1", 0), Put("k", "a/2", b"2", 0)])
        listing = self._listing(backend, "k", "a/")
        backend.commit([Delete("k", "a/2", 1), Put("k", "a/3", b"3", 0)])  # same count
        with pytest.raises(ConflictError):
            backend.commit([listing, Put("k", "c", b"w", 0)])

    def test_a_listing_check_sees_the_store_before_its_own_batch_writes(
        self, backend: Backend
    ) -> None:
        backend.commit([Put("k", "a/1", b"1", 0)])
        listing = self._listing(backend, "k", "a/")
        backend.commit([listing, Put("k", "a/2", b"2", 0), Delete("k", "a/1", 1)])
        assert [r.name for r in backend.list("k", prefix="a/")] == ["a/2"]

    # -- two handles on one store -----------------------------------------------------------------

    def test_a_second_handle_sees_writes_and_conflicts(self, backend: Backend) -> None:
        other = self.open_again(backend)
        if other is None:
            pytest.skip(f"{type(backend).__name__} cannot open a second handle on one store")
        try:
            (record,) = backend.commit([Put("k", "a", b"1", 0)])
            assert other.get("k", "a") == record
            assert other.generation() == backend.generation()
            other.commit([Put("k", "a", b"2", 1)])
            with pytest.raises(ConflictError):
                backend.commit([Put("k", "a", b"3", 1)])
            assert _data(backend, "k", "a") == b"2"
        finally:
            other.close()

    # -- the model ------------------------------------------------------------------------------

    def test_random_batches_match_a_dict_model(self) -> None:
        contract = self

        class Machine(BackendModelMachine):
            def make_backend(self) -> Backend:
                return contract.make_backend()

        current = settings()
        run_state_machine_as_test(
            Machine,
            settings=settings(
                current,
                max_examples=min(current.max_examples, self.model_examples),
                stateful_step_count=self.model_steps,
                deadline=None,
            ),
        )


def _data(backend: Backend, kind: str, name: str) -> bytes:
    record = backend.get(kind, name)
    assert record is not None, f"{kind}/{name} is missing"
    return record.data


_KINDS = st.sampled_from(["key", "cert"])
_NAMES = st.sampled_from(["a", "a/1", "a/2", "b", "é"])
_DATA = st.binary(max_size=16)


@st.composite
def _operation(draw: st.DrawFn) -> tuple[str, str, bytes | None, str]:
    """(kind, name, data or None for delete, how to choose the expected revision)."""
    kind = draw(_KINDS)
    name = draw(_NAMES)
    data = draw(st.one_of(st.none(), _DATA))
    mode = draw(st.sampled_from(["current", "current", "any", "zero", "stale"]))
    return kind, name, data, mode


class BackendModelMachine(RuleBasedStateMachine):
    """Random batches against a backend and a dict model; subclass and set :meth:`make_backend`."""

    def __init__(self) -> None:
        super().__init__()
        self.backend = self.make_backend()
        self.model: dict[tuple[str, str], tuple[bytes, int, int]] = {}
        self.generation = 0
        self.deleted_since: dict[str, int] = {}
        #: The model after each of the last few steps (what a transaction read then).
        self.history: list[dict[tuple[str, str], tuple[bytes, int, int]]] = [{}]

    def make_backend(self) -> Backend:
        """A fresh backend for one run of the machine."""
        raise NotImplementedError

    def teardown(self) -> None:
        self.backend.close()

    def _expected(self, kind: str, name: str, mode: str) -> int:
        current = self.model.get((kind, name))
        revision = current[1] if current else 0
        if mode == "current":
            return revision
        if mode == "any":
            return ANY
        if mode == "zero":
            return 0
        return revision + 1  # stale: never right

    @rule(batch=st.lists(_operation(), min_size=1, max_size=4))
    def commit(self, batch: list[tuple[str, str, bytes | None, str]]) -> None:
        """Commit a random batch of puts and deletes and check the backend against the model.

        Each operation's expected revision is the current one, ``ANY``, 0
        or a stale one. A batch naming one record twice must raise
        ``InvalidArgumentError`` and one with any wrong expected revision
        ``ConflictError``, both writing nothing (the invariant checks that).
        Otherwise the generation must grow, and the returned records must be
        the puts with their revisions incremented and the new generation as
        their sequence number.
        """
        ops: list[Put | Delete] = []
        seen: set[tuple[str, str]] = set()
        for kind, name, data, mode in batch:
            expected = self._expected(kind, name, mode)
            ops.append(
                Put(kind, name, data, expected)
                if data is not None
                else Delete(kind, name, expected)
            )
            seen.add((kind, name))
        if len(seen) < len(ops):
            with pytest.raises(InvalidArgumentError):
                self.backend.commit(ops)
            return
        conflict = any(
            op.expected not in (ANY, self.model.get((op.kind, op.name), (b"", 0))[1]) for op in ops
        )
        if conflict:
            with pytest.raises(ConflictError):
                self.backend.commit(ops)
            return
        written = self.backend.commit(ops)
        generation = self.backend.generation()
        assert generation > self.generation
        self.generation = generation
        expected_written = []
        for op in ops:
            key = (op.kind, op.name)
            if isinstance(op, Delete):
                self.model.pop(key, None)
                continue
            revision = self.model.get(key, (b"", 0, 0))[1] + 1
            self.model[key] = (op.data, revision, generation)
            expected_written.append(Record(op.kind, op.name, op.data, revision, generation))
        assert written == expected_written
        self.history = [*self.history[-3:], dict(self.model)]

    @rule(
        writes=st.lists(_operation(), min_size=0, max_size=2),
        reads=st.lists(st.tuples(_KINDS, _NAMES), max_size=2, unique=True),
        listings=st.lists(st.tuples(_KINDS, st.sampled_from(["", "a", "a/", "z"])), max_size=2),
        back=st.integers(0, 3),
    )
    def commit_checked(
        self,
        writes: list[tuple[str, str, bytes | None, str]],
        reads: list[tuple[str, str]],
        listings: list[tuple[str, str]],
        back: int,
    ) -> None:
        """Commit writes with checks of what a transaction read a few steps back.

        The model decides without the two-number shortcut: a :class:`Check`
        holds when the record's revision is the one read, a
        :class:`CheckList` when the listing holds exactly the records (and
        revisions) it held then. The backend must agree, writing the batch
        or raising ``ConflictError`` and writing nothing.
        """
        then = self.history[max(0, len(self.history) - 1 - back)]
        ops: list[Operation] = []
        holds = True
        for kind, name in reads:
            revision = then.get((kind, name), (b"", 0))[1]
            ops.append(Check(kind, name, revision))
            holds &= self.model.get((kind, name), (b"", 0))[1] == revision
        for kind, prefix in listings:
            old = {n: v for (k, n), v in then.items() if k == kind and n.startswith(prefix)}
            now = {n: v for (k, n), v in self.model.items() if k == kind and n.startswith(prefix)}
            newest = max((v[2] for v in old.values()), default=0)
            ops.append(CheckList(kind, prefix, len(old), newest))
            holds &= old == now
        names = {(kind, name) for kind, name in reads}
        for kind, name, data, mode in writes:
            expected = self._expected(kind, name, mode)
            ops.append(
                Put(kind, name, data, expected)
                if data is not None
                else Delete(kind, name, expected)
            )
            holds &= expected in (ANY, self.model.get((kind, name), (b"", 0))[1])
            names.add((kind, name))
        if len(names) < len(reads) + len(writes):
            with pytest.raises(InvalidArgumentError):
                self.backend.commit(ops)
            return
        if not holds:
            with pytest.raises(ConflictError):
                self.backend.commit(ops)
            return
        self.backend.commit(ops)
        if writes:
            self.generation = self.backend.generation()
            for op in ops:
                key = (op.kind, getattr(op, "name", ""))
                if isinstance(op, Delete):
                    self.model.pop(key, None)
                elif isinstance(op, Put):
                    revision = self.model.get(key, (b"", 0, 0))[1] + 1
                    self.model[key] = (op.data, revision, self.generation)
        self.history = [*self.history[-3:], dict(self.model)]

    @rule(kind=_KINDS, limit=st.integers(1, 4))
    def scan_pages(self, kind: str, limit: int) -> None:
        """Paging through ``kind`` with ``scan`` gives the model's records; ``kinds`` too."""
        found: list[Record] = []
        after = ""
        while True:
            page = self.backend.scan(kind, after=after, limit=limit)
            assert len(page) <= limit
            found += page
            if len(page) < limit:
                break
            after = page[-1].name
        assert found == [
            Record(k, n, *stored) for (k, n), stored in sorted(self.model.items()) if k == kind
        ]
        assert self.backend.kinds() == sorted({k for k, _ in self.model})

    @rule(kind=_KINDS, name=_NAMES)
    def get(self, kind: str, name: str) -> None:
        """``get`` returns the model's record (data, revision, seq), or None for an absent one."""
        record = self.backend.get(kind, name)
        stored = self.model.get((kind, name))
        if stored is None:
            assert record is None
        else:
            assert record == Record(kind, name, *stored)

    @rule(kind=_KINDS, prefix=st.sampled_from(["", "a", "a/", "b", "z"]), back=st.integers(0, 3))
    def list_after(self, kind: str, prefix: str, back: int) -> None:
        """``list(after_seq=...)`` returns exactly the records written after it, in seq order.

        ``after_seq`` is a few generations back, so the answer is every live
        record of ``kind`` under ``prefix`` whose sequence number is greater:
        what another process following the change sequence would read.
        """
        after = max(0, self.generation - back)
        found = self.backend.list(kind, prefix=prefix, after_seq=after)
        model = sorted(
            (
                Record(k, n, *v)
                for (k, n), v in self.model.items()
                if k == kind and n.startswith(prefix) and v[2] > after
            ),
            key=lambda r: (r.seq, r.name),
        )
        assert sorted(found, key=lambda r: (r.seq, r.name)) == model
        assert [r.seq for r in found] == sorted(r.seq for r in found)

    @invariant()
    def listing_matches_the_model(self) -> None:
        """After every step: ``list(kind)`` is the model in name order; the generation matches."""
        for kind in ("key", "cert"):
            expected = [Record(k, n, *v) for (k, n), v in sorted(self.model.items()) if k == kind]
            assert self.backend.list(kind) == expected
        assert self.backend.generation() == self.generation
