"""``python -m lwm2m_server.cli`` runs the ``tinymlaas`` command."""

from lwm2m_server.cli import main

main()
