"""Live protocol fuzzing (``ground fuzz``): cases, the node port, the campaign, reduction.

``cases`` generates structure-aware, dictionary-driven inputs with the outcomes each allows
(from ``case``, ``encoding``, ``oracle`` and the generators ``gen_commands``,
``gen_messages``, ``gen_link``); ``port`` gives raw access to a node; ``runner`` runs batches
and checks the node's health, verifications and counters; ``reduce`` shrinks a crashing batch;
``cli`` is the subcommand.
"""
