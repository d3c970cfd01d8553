"""Observe-Composite on the server side (FETCH ``/`` with Observe naming several paths, LwM2M 1.1), the
composite half of :class:`lwm2m_server.coap.device_client.DeviceClient`. A composite observation belongs to its
one caller (:mod:`lwm2m_server.coap.composite_observation`) and is always carried by aiocoap; it ends on
de-registration, a new registration or a move like the single-path observations of
:class:`~lwm2m_server.coap.observer.ObserveOperations`."""

from __future__ import annotations

from collections.abc import Sequence

from lwm2m_server.coap.composite_observation import CompositeObservation
from lwm2m_server.coap.errors import DeviceError
from lwm2m_server.coap.exchange import RawResponse, RequestSpec
from lwm2m_server.coap.observer import ObserveOperations, as_path, ended_by_library
from lwm2m_server.protocol.composite import encode_paths
from lwm2m_server.protocol.jsonvalues import content_to_json
from lwm2m_server.protocol.model import Content
from lwm2m_server.protocol.negotiation import choose_composite_answer
from lwm2m_server.protocol.paths import LwM2MPath
from lwm2m_server.registration import Registration


class CompositeObserveOperations(ObserveOperations):
    """Observe-Composite, on top of the single-path observe operations (their request, decoding, ending)."""

    async def observe_composite(
        self,
        endpoint: str,
        paths: Sequence[LwM2MPath | str],
        *,
        timeout: float | None = None,
        owner: str | None = None,
    ) -> CompositeObservation:
        """FETCH ``/`` with Observe naming ``paths`` (LwM2M 1.1); the initial root content is in ``.value``,
        notifications (root content too) come from the async iterator and as ``notification`` events with
        ``path "/"``. Ends on de-registration, a new registration or a move, like single-path observations."""
        ps = tuple(as_path(p) for p in paths)
        reg = self._reg(endpoint)
        cf = self._composite_format(reg, "observe-composite")
        if self.queue is not None:
            reg = await self.queue.wait_awake(reg)
        accept = choose_composite_answer(reg.lwm2m_version, reg.content_formats, cf)
        spec = RequestSpec("FETCH", "/", encode_paths(cf, ps), content_format=cf, accept=accept)
        what = "observe-composite"
        msg, aobs, initial = await self._observe_request(
            reg, spec, what, timeout, lambda resp: self._decode_root(reg, resp, accept, what)
        )
        obs = CompositeObservation(endpoint, ps, reg.reg_id, reg.address, accept, initial, owner=owner)
        if msg.opt.observe is None or aobs is None or aobs.cancelled:
            obs.end(DeviceError("not_observable", "the composite is not observable", endpoint=endpoint))
            return obs
        obs.aiocoap_obs = aobs
        aobs.register_callback(lambda m: self._on_composite_notify(obs, RawResponse.from_message(m)),
                               _suppress_deprecation=True)  # fmt: skip
        aobs.register_errback(lambda e: ended_by_library(obs, e), _suppress_deprecation=True)
        self._composites.setdefault(endpoint, []).append(obs)
        obs.on_end.append(self._forget_composite)
        return obs

    async def cancel_observe_composite(
        self, endpoint: str, paths: Sequence[LwM2MPath | str], *, owner: str | None = None
    ) -> int:
        """Cancel the composite observations of exactly ``paths`` (any order) of ``owner`` (all when None)."""
        wanted = frozenset(as_path(p) for p in paths)
        found = [
            o for o in self._composites.get(endpoint, []) if frozenset(o.paths) == wanted and owner in (None, o.owner)
        ]
        for obs in found:
            obs.cancel()
        return len(found)

    def composite_observations(self, endpoint: str) -> list[CompositeObservation]:
        return list(self._composites.get(endpoint, []))

    def _forget_composite(self, obs: CompositeObservation) -> None:
        lst = self._composites.get(obs.endpoint)
        if lst and obs in lst:
            lst.remove(obs)
            if not lst:
                del self._composites[obs.endpoint]

    def _on_composite_notify(self, obs: CompositeObservation, resp: RawResponse) -> None:
        if obs.cancelled:
            return

        def decode(reg: Registration, resp: RawResponse) -> Content:
            return self._decode_root(reg, resp, obs.content_format, "observe-composite")

        content = self._notification(obs.endpoint, "/", resp, obs.end, decode)
        if content is None:
            return
        paths = [str(p) for p in obs.paths]
        self.events.emit("notification", obs.endpoint, path="/", paths=paths, values=content_to_json(content))
        obs.push(content)
