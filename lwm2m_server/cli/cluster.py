"""``tinymlaas cluster status``: a thin client of ``GET /api/cluster`` (any node answers for all of them).

Exit codes: 0 every node alive, 1 remote failure or at least one node not alive, 2 usage."""

from __future__ import annotations

import time

import typer

from lwm2m_server.cli.app import CliError, app
from lwm2m_server.cli.http import DEFAULT_SERVER, JsonOpt, ServerOpt, TokenOpt, echo_json, request
from lwm2m_server.cli.tables import listing

cluster_app = typer.Typer(help="Several server nodes on one PostgreSQL store.", no_args_is_help=True)
app.add_typer(cluster_app, name="cluster")


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


@cluster_app.command("status")
def status(as_json: JsonOpt = False, server: ServerOpt = DEFAULT_SERVER, token: TokenOpt = None) -> None:
    """Nodes (alive, last heartbeat), the devices each owns, and the leases."""
    view = request(server, "GET", "/api/cluster", token=token)
    if as_json:
        echo_json(view)
    else:
        from rich.console import Console

        console = Console()
        rows = [(("* " if n["self"] else "") + n["node_id"], "alive" if n["alive"] else "DEAD",
                 f"{n['age_s']:.1f}s ago", n["devices"], n["info"].get("coap_port", ""),
                 n["info"].get("http_port", "")) for n in view["nodes"]]
        console.print(listing(("node", "state", "last seen", "devices", "coap", "http"), rows, keep=("node",),
                              right=("devices",), title=f"{view['devices']} devices (* = the node asked)"))
        for owner, count in view["devices_without_live_node"].items():
            console.print(f"{count} devices owned by {owner}, which has no node row (stopped or never a node)")
        if view["leases"]:
            console.print(listing(("lease", "holder", "expires", "valid"),
                                  [(le["name"], le["holder"], _when(le["expires_at"]), le["valid"])
                                   for le in view["leases"]], keep=("lease", "holder")))
        else:
            console.print("no leases")
    dead = [n["node_id"] for n in view["nodes"] if not n["alive"]]
    if dead:
        raise CliError(f"{len(dead)} node(s) not alive: {', '.join(dead)}", code=1)
