"""moto 5.2 made to cost the same per event however long it runs: SQS queues and rule input transformers.

**SQS.** moto keeps a queue's messages in a list: every ReceiveMessage rebuilds the list of visible
messages, every DeleteMessage scans it twice, and two receivers can take the same message (the
check and the mark are separate steps outside any lock). Under load the local stack's cost per
event grew with the queue's depth. ``apply`` replaces, for standard (non-FIFO) queues only:

* the message list by ``MessageStore``: a dict by message id (insertion order kept, so iteration
  and counts still work for the rest of moto), a FIFO of messages ready to receive, a heap of
  messages waiting for their visibility timeout or delay, and a map of receipt handles;
* ``receive_message``: takes ready messages under the queue's lock (no duplicate receives), moves
  a message to the dead-letter queue after ``maxReceiveCount`` as moto and SQS do, and long-polls
  on the queue's condition until a message arrives or one becomes visible again;
* ``delete_message`` and ``change_message_visibility``: a lookup of the receipt handle (and only the
  latest ``DELETED_MEMORY`` deleted handles are remembered, where moto keeps them all);
* the ``ApproximateNumberOfMessages*`` counts, which moto computed over every message on every
  SendMessage (it reads all the queue's attributes to find ``ContentBasedDeduplication``): they are
  not computed there any more; GetQueueAttributes still counts exactly (in one pass).

FIFO queues keep moto's code (message groups, deduplication). The behaviour is SQS's; only the
costs change. (Worth proposing upstream: moto's own TODO on ``Queue.messages`` says as much.)

**PutEvents.** For every event, moto rebuilds the event (a deep copy, the detail parsed from JSON
again, two clock reads) once per rule of the bus. It is built once per event, each rule gets a copy,
and the rules share the event's field lookups (``local.event_pattern.one_event``). What happens to
an accepted event goes through ``deliver_with``: at once by default (moto's behaviour, what the
tests use), after the answer on the local stack (``local.async_events``, as EventBridge does).

**Input transformers** again: moto evaluates eight JSONPaths and serialises the whole event to JSON
for every target, even one without an InputTransformer (an archive's target, with its empty
``InputPathsMap``, too). Only the paths the template names are evaluated, a plain path
(``$.detail.type``) is looked up directly (jsonpath-ng for any other), and a template holding
``<aws.events.event.json>`` as a value gets the event itself rather than its JSON text parsed back
(the event log's rule and the archive: ~90 µs of ~170 per delivered event); the result is the same.

**Request dispatch.** For every HTTP request moto lists its own package directory (to recognise a
service name) and lists the methods of the response class with ``inspect``: both are cached.

**Receipt handles, copies and body digests.** moto draws a receipt handle's 185 letters with one
``random.choice`` call each, deep-copies every message it returns, and computes a message body's
MD5 every time it is read (once per receive); the handle is 185 hex digits drawn at once, a
returned message is a shallow copy, the digest is kept with the message.

**SendMessage** reads all of a queue's attributes, and moto converts each attribute's name with a
regular expression every time: the conversion is cached.

**Input transformers.** moto parses every ``InputPathsMap`` JSONPath with jsonpath-ng for every
event it delivers, and jsonpath-ng builds a PLY lexer per parse (~10 ms each): a rule with an
InputTransformer cost tens of milliseconds per event. Parsed paths are cached (they are immutable).
"""

from __future__ import annotations

import copy
import functools
import heapq
import importlib
import json
import re
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from local.state import GATE

DELETED_MEMORY = 10_000  # moto remembers every deleted receipt handle: a set growing with every message


class MessageStore:
    """A standard queue's messages, indexed for receive and delete (see the module's doc)."""

    def __init__(self, messages: Iterable[Any] = ()) -> None:
        self._by_id: dict[str, Any] = {}
        self._ready: deque[Any] = deque()
        self._waiting: list[tuple[float, int, Any]] = []
        self._sequence = 0
        self.handles: dict[str, Any] = {}
        self.deleted: dict[str, None] = {}  # the latest DELETED_MEMORY receipt handles of deleted messages
        for message in messages:
            self.append(message)
            for handle in message.all_receipt_handles:
                if handle:
                    self.handles[handle] = message

    # -- what moto's own code uses of the list ---------------------------------------------
    def __iter__(self) -> Iterator[Any]:
        return iter(list(self._by_id.values()))

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, message: object) -> bool:
        return getattr(message, "id", None) in self._by_id

    def append(self, message: Any) -> None:
        self._by_id[message.id] = message
        self.schedule(message)

    def remove(self, message: Any) -> None:
        self._by_id.pop(message.id, None)
        for handle in message.all_receipt_handles:
            self.handles.pop(handle, None)

    # -- the index -------------------------------------------------------------------------
    def schedule(self, message: Any, now: float | None = None) -> None:
        """File ``message`` as ready, or as waiting until it is visible and no longer delayed."""
        due = max(message.visible_at, message.delayed_until)
        if now is None or due > now:
            self._sequence += 1
            heapq.heappush(self._waiting, (due, self._sequence, message))
        else:
            self._ready.append(message)

    @property
    def has_ready(self) -> bool:
        return bool(self._ready)

    def next_due(self) -> float | None:
        """When (unix ms) the next waiting message is due, if any."""
        return self._waiting[0][0] if self._waiting else None

    def take(self, count: int, now: float) -> Iterator[Any]:
        """Yield up to ``count`` messages that are live, visible and not delayed at ``now`` (unix ms)."""
        while self._waiting and self._waiting[0][0] <= now:
            waiting: Any = heapq.heappop(self._waiting)[2]
            if self.live(waiting):
                self.schedule(waiting, now)
        taken: set[str] = set()
        while len(taken) < count and self._ready:
            message: Any = self._ready.popleft()
            if message.id in taken or not self.live(message):
                continue  # deleted (or moved to the dead-letter queue), or filed twice
            if max(message.visible_at, message.delayed_until) > now:
                self.schedule(message, now)  # received or delayed meanwhile
                continue
            taken.add(message.id)
            yield message

    def live(self, message: Any) -> bool:
        """Whether ``message`` is still in the queue (not deleted, not moved to the dead-letter queue)."""
        return bool(self._by_id.get(message.id) is message)

    def counts(self, now: float) -> tuple[int, int, int]:
        """(visible, delayed, in flight) at ``now`` (unix ms), in one pass."""
        messages = list(self._by_id.values())
        delayed = sum(1 for message in messages if message.delayed_until > now)
        in_flight = sum(1 for message in messages if message.visible_at >= now)
        visible = sum(1 for message in messages if message.visible_at < now and message.delayed_until <= now)
        return visible, delayed, in_flight

    def forget(self, handles: Iterable[str | None]) -> None:
        """Remember the handles of a deleted message (deleting it again is fine), the latest ones only."""
        for handle in handles:
            if handle:
                self.deleted[handle] = None
        while len(self.deleted) > DELETED_MEMORY:
            del self.deleted[next(iter(self.deleted))]

    def received(self, message: Any) -> None:
        """Record ``message``'s new receipt handle and wait for its visibility timeout."""
        self.handles[message.receipt_handle] = message
        self._sequence += 1
        heapq.heappush(self._waiting, (message.visible_at, self._sequence, message))


def _store(queue: Any) -> MessageStore | None:
    """The queue's MessageStore (made from moto's list on first use); None for FIFO queues."""
    if queue.fifo_queue:
        return None
    if not isinstance(queue._messages, MessageStore):
        with queue._messages_lock:
            if not isinstance(queue._messages, MessageStore):
                queue._messages = MessageStore(queue._messages)
    store: MessageStore = queue._messages
    return store


def apply() -> None:
    """Patch moto in this process (call once)."""
    _cache_json_paths()
    _cache_attribute_names()
    _build_events_once()
    _index_standard_queues()
    _cheaper_messages()
    _transform_inputs_directly()
    _cache_dispatch_lookups()


def deliver(bus: Any, message: dict[str, Any]) -> None:
    """Send an accepted event to every matching rule of ``bus`` (each rule gets its own copy); a rule whose
    pattern pins ``source`` or ``detail-type`` to other strings is skipped before matching."""
    from local.event_pattern import one_event

    source, detail_type = message.get("source"), message.get("detail-type")
    pinned = isinstance(source, str) and isinstance(detail_type, str)
    with one_event():
        for rule in list(bus.rules.values()):
            compiled = getattr(rule.event_pattern, "compiled", None)  # local.moto_compat's patterns
            if not pinned or compiled is None or compiled.may_match(source, detail_type):
                rule.send_to_targets(dict(message))


Deliverer = Callable[[Any, Any, dict[str, Any]], None]  # (events backend, bus, event)


def _deliver_now(backend: Any, bus: Any, message: dict[str, Any]) -> None:
    deliver(bus, message)


_delivery: Deliverer = _deliver_now


def deliver_with(deliverer: Deliverer | None) -> None:
    """What PutEvents does with each accepted event (None: deliver it before answering, as moto does)."""
    global _delivery
    _delivery = deliverer or _deliver_now


def _build_events_once() -> None:
    from moto.core.utils import unix_time
    from moto.events.models import EventsBackend
    from moto.moto_api._internal import mock_random

    original = EventsBackend.put_events

    @functools.wraps(original)
    def put_events(self: Any, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        for event in events if len(events) <= 10 else []:
            detail = _detail(event)
            if detail is None:  # moto's own answer for an invalid entry (and its warning for a non-object)
                entries += original(self, [event])
                continue
            event_id = str(mock_random.uuid4())
            entries.append({"EventId": event_id})
            bus = self.describe_event_bus(self._normalize_event_bus_arn(event.get("EventBusName")))
            now = unix_time()
            message = {
                "version": "0",
                "id": event_id,
                "detail-type": event["DetailType"],
                "source": event["Source"],
                "account": self.account_id,
                "time": event.get("Time", now),
                "region": self.region_name,
                "resources": event.get("Resources", []),
                "detail": detail,
                "ingestion-time": now,
            }
            _delivery(self, bus, message)
        return entries if len(events) <= 10 else original(self, events)

    def _detail(event: dict[str, Any]) -> dict[str, Any] | None:
        if not (event.get("Source") and event.get("DetailType") and event.get("Detail")):
            return None
        try:
            detail = json.loads(event["Detail"])
        except ValueError:
            return None
        return detail if isinstance(detail, dict) else None

    EventsBackend.put_events = put_events  # type: ignore[method-assign]


def _cache_attribute_names() -> None:
    """moto converts every queue attribute name with a regular expression, on every SendMessage."""
    from moto.core import utils
    from moto.sqs import models

    cached = functools.lru_cache(maxsize=4096)(utils.camelcase_to_underscores)
    models.camelcase_to_underscores = cached  # type: ignore[attr-defined]


def _cache_json_paths() -> None:
    extensions: Any = importlib.import_module("jsonpath_ng.ext")  # what moto's EventTemplateParser imports per call
    extensions.parse = functools.lru_cache(maxsize=1024)(extensions.parse)


def _index_standard_queues() -> None:
    from moto.core.utils import unix_time, unix_time_millis
    from moto.sqs import models
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    backend_class, queue_class = models.SQSBackend, models.Queue
    original_receive = backend_class.receive_message
    original_delete = queue_class.delete_message
    original_visibility = backend_class.change_message_visibility

    @functools.wraps(original_receive)
    def receive_message(
        self: Any,
        queue_name: str,
        count: int,
        wait_seconds_timeout: int,
        visibility_timeout: int,
        message_attribute_names: list[str] | None = None,
    ) -> list[Any]:
        queue = self.get_queue(queue_name)
        store = _store(queue)
        if store is None:
            return original_receive(
                self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names
            )
        deadline = unix_time() + (wait_seconds_timeout or 0)
        retention = int(queue.message_retention_period) * 1000
        max_receives = (queue.redrive_policy or {}).get("maxReceiveCount") if queue.dead_letter_queue else None
        result: list[Any] = []
        while True:
            left_gate = False
            try:
                with queue._messages_lock:
                    now = unix_time_millis()
                    progressed = False
                    for message in store.take(count - len(result), now):
                        progressed = True
                        if max_receives is not None and message.approximate_receive_count >= int(max_receives):
                            store.remove(message)
                            queue.dead_letter_queue.add_message(message)
                            continue
                        if message.sent_timestamp + retention <= now:
                            store.remove(message)  # past MessageRetentionPeriod
                            continue
                        message.mark_received(visibility_timeout=visibility_timeout)
                        store.received(message)
                        # moto deep-copies; a shallow copy is enough: the filter gives the copy its own
                        # attribute dict, and what a later receive changes (the handle, counts) is rebound
                        received = copy.copy(message)
                        models._filter_message_attributes(received, message_attribute_names or [])
                        result.append(received)
                    remaining = deadline - unix_time()
                    if len(result) >= count or (result and not store.has_ready) or remaining <= 0:
                        return result
                    if progressed:
                        continue
                    due = store.next_due()
                    wait = remaining if due is None else min(remaining, max(0.001, (due - now) / 1000))
                    # A long poll waits outside the state gate (local.state), so a save need not wait for
                    # it; it goes back in only once the queue's lock is released (the finally below).
                    left_gate = GATE.inside
                    GATE.leave()
                    queue._messages_lock.wait(wait)
            finally:
                if left_gate:
                    GATE.enter()

    def delete_message(self: Any, receipt_handle: str) -> None:
        store = _store(self)
        if store is None:
            return original_delete(self, receipt_handle)
        with self._messages_lock:
            if receipt_handle in store.deleted or receipt_handle in self.deleted_messages:
                return None  # deleting twice is fine, as in SQS
            message = store.handles.get(receipt_handle)
            if message is None:
                raise ReceiptHandleIsInvalid()
            store.remove(message)
            self.pending_messages.discard(message)
            store.forget(message.all_receipt_handles)
        return None

    def change_message_visibility(self: Any, queue_name: str, receipt_handle: str, visibility_timeout: int) -> None:
        queue = self.get_queue(queue_name)
        store = _store(queue)
        if store is None:
            return original_visibility(self, queue_name, receipt_handle, visibility_timeout)
        with queue._messages_lock:
            message = store.handles.get(receipt_handle)
            if message is None or message not in store:
                raise ReceiptHandleIsInvalid()
            # moto's checks (the 12-hour limit), then the new due time is filed
            original_visibility(self, queue_name, receipt_handle, visibility_timeout)
            store.schedule(message, unix_time_millis())
            queue._messages_lock.notify_all()
        return None

    sending = threading.local()
    original_send = backend_class.send_message

    @functools.wraps(original_send)
    def send_message(self: Any, *args: Any, **kwargs: Any) -> Any:
        sending.active = True  # it reads every attribute but needs no count
        try:
            return original_send(self, *args, **kwargs)
        finally:
            sending.active = False

    def counted(index: int, original: Any) -> property:
        def count(self: Any) -> int:
            store = _store(self)
            if store is None:
                return original.fget(self)  # type: ignore[no-any-return]
            return 0 if getattr(sending, "active", False) else store.counts(unix_time_millis())[index]

        return property(count)

    counts = ("approximate_number_of_messages", "approximate_number_of_messages_delayed")
    for index, name in enumerate((*counts, "approximate_number_of_messages_not_visible")):
        setattr(queue_class, name, counted(index, getattr(queue_class, name)))
    backend_class.send_message = send_message  # type: ignore[method-assign]
    backend_class.receive_message = receive_message  # type: ignore[method-assign]
    queue_class.delete_message = delete_message  # type: ignore[method-assign]
    backend_class.change_message_visibility = change_message_visibility  # type: ignore[method-assign]


def _cheaper_messages() -> None:
    from moto.moto_api._internal import mock_random  # moto's random (seeded through /moto-api/seed)
    from moto.sqs import models

    def generate_receipt_handle() -> str:  # 185 characters from 740 random bits (hex), drawn at once
        return format(mock_random.getrandbits(740), "0185x")

    original: Any = models.Message.body_md5

    def body_md5(self: Any) -> str:
        kept = self.__dict__.get("local_body_md5")
        if kept is None or kept[0] is not self.body:
            kept = self.__dict__["local_body_md5"] = (self.body, original.fget(self))
        return str(kept[1])

    models.generate_receipt_handle = generate_receipt_handle  # type: ignore[attr-defined]
    models.Message.body_md5 = property(body_md5)  # type: ignore[method-assign,assignment]


_PLAIN_PATH = re.compile(r"\$(\.[A-Za-z0-9_-]+)+")


def _transform_inputs_directly() -> None:
    from moto.events import utils

    parser = utils.EventTemplateParser
    stringify = parser._stringify

    def value_at(path: str, event: Any) -> Any:
        if not _PLAIN_PATH.fullmatch(path):
            found = importlib.import_module("jsonpath_ng.ext").parse(path).find(event)
            return found[0].value if found else None
        node = event
        for key in path.split(".")[1:]:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        return node

    def parse(input_template: str, input_paths_map: dict[str, Any], event: Any) -> dict[str, Any]:
        template = input_template or parser.DEFAULT_EVENT_INPUT_TEMPLATE
        for name, path in (input_paths_map or parser.DEFAULT_EVENT_INPUT_PATHS_MAP).items():
            if f"<{name}>" not in template:
                continue  # (moto evaluates it anyway: an archive's {} map means all eight default paths)
            result = stringify(value_at(path, event))
            if result:
                template = template.replace(f"<{name}>", result)
        if "<aws.events.event.ingestion-time>" in template:
            template = template.replace("<aws.events.event.ingestion-time>", stringify(event["ingestion-time"]))
        if "<aws.events.event.json>" in template:
            whole = _with_event(template, event)
            if whole is not None:
                return whole
            template = template.replace("<aws.events.event.json>", stringify(event))
        loaded: dict[str, Any] = json.loads(template)
        return loaded

    parser.parse = staticmethod(parse)  # type: ignore[method-assign]


_EVENT_SLOT = "\u0000aws.events.event.json"  # what no template holds


def _with_event(template: str, event: dict[str, Any]) -> dict[str, Any] | None:
    """The template with ``<aws.events.event.json>`` standing as a value, that value being ``event`` (a shallow
    copy: what moto does with a transformed event next only serialises it, or rebinds its top-level fields):
    what moto's text substitution and ``json.loads`` make, without serialising and parsing the whole event
    (None when the placeholder stands elsewhere, where moto's way gives its error: inside a string the slot's
    quotes make the template invalid JSON, as a key it is left unfilled)."""
    try:
        loaded = json.loads(template.replace("<aws.events.event.json>", json.dumps(_EVENT_SLOT)))
    except ValueError:
        return None
    slots = 0

    def fill(node: Any) -> Any:
        nonlocal slots
        if node == _EVENT_SLOT:
            slots += 1
            return dict(event)
        if isinstance(node, dict):
            return {key: fill(value) for key, value in node.items()}
        if isinstance(node, list):
            return [fill(value) for value in node]
        return node

    filled = fill(loaded)
    return filled if isinstance(filled, dict) and slots == template.count("<aws.events.event.json>") else None


def _cache_dispatch_lookups() -> None:
    from moto import backends
    from moto.core import responses

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    responses.method_names_from_class = functools.cache(responses.method_names_from_class)  # type: ignore[attr-defined]
