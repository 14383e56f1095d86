"""Standalone mode (Kafka's StandaloneHerder): one worker is the whole cluster; connector
configurations live in memory (given at start from connector.properties files, or by REST),
source offsets in ``offset.storage.file.filename``.

Every operation runs under one lock, synchronously: when a REST call returns, the connector has
been (re)configured and its tasks started or stopped. Restarts with ``includeTasks`` answer with
the RESTARTING plan and restart in the background, as Kafka does.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from typing import Any

from tomyum.connect import plugins
from tomyum.connect.connector import ConnectError, SinkConnector
from tomyum.connect.herder import AbstractHerder, AlreadyExistsError, BadRequestError, NotFoundError
from tomyum.connect.worker import State, TargetState, TaskId, Worker

log = logging.getLogger("tomyum.connect.standalone")

class StandaloneHerder(AbstractHerder):
    def __init__(self, worker: Worker, kafka_cluster_id: str | None = None) -> None:
        super().__init__(worker, kafka_cluster_id)
        worker.listener = self
        worker.on_reconfiguration_request = self._reconfigure_async
        self._configs: dict[str, dict[str, str]] = {}
        self._targets: dict[str, TargetState] = {}
        self._task_configs: dict[str, list[dict[str, str]]] = {}

    # config state ---------------------------------------------------------------------------
    def connectors(self) -> list[str]:
        with self.lock:
            return sorted(self._configs)

    def connector_config(self, name: str) -> dict[str, str]:
        with self.lock:
            return dict(self._configs[name])

    def target_state(self, name: str) -> TargetState:
        with self.lock:
            return self._targets[name]

    def task_configs(self, name: str) -> list[dict[str, str]]:
        with self.lock:
            return [dict(c) for c in self._task_configs.get(name, [])]

    # lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        self.ready = True

    def stop(self) -> None:
        with self.lock:
            self.worker.stop()

    def put_connector_config(self, name: str, config: Mapping[str, str], allow_replace: bool,
                             initial_state: TargetState = TargetState.STARTED) -> tuple[bool, dict[str, Any]]:
        """Create or replace; returns (created, ConnectorInfo)."""
        config = self.check_name(name, config)
        with self.lock:
            exists = name in self._configs
            if exists and not allow_replace:
                raise AlreadyExistsError(f"Connector {name} already exists")
            self.check_valid(config)
            if exists:
                self._stop_connector(name)
            else:
                self._targets[name] = initial_state
            self._configs[name] = config
            self._start_connector(name)
            return not exists, self.connector_info(name)

    def delete_connector(self, name: str) -> None:
        with self.lock:
            self._require(name)
            self._stop_connector(name)
            del self._configs[name]
            self._targets.pop(name, None)
            self._task_configs.pop(name, None)
            with self.status_lock:
                self.connector_status.pop(name, None)
                for t in [t for t in self.task_status if t.connector == name]:
                    del self.task_status[t]
                self.active_topics.pop(name, None)

    def _start_connector(self, name: str) -> None:
        config = self._configs[name]
        target = self._targets[name]
        if not self.worker.start_connector(name, config, target):
            self._task_configs[name] = []
            return
        if target is TargetState.STOPPED:
            self._task_configs[name] = []
            return
        self._update_task_configs(name)
        self._start_tasks(name)

    def _update_task_configs(self, name: str) -> None:
        config = self._configs[name]
        try:
            self._task_configs[name] = self.worker.connector_task_configs(name, int(config.get("tasks.max", "1")))
        except Exception as e:
            log.error("Failed to reconfigure connector's tasks (%s)", name, exc_info=e)
            self.worker.listener.on_connector_state(name, State.FAILED, str(e))
            self._task_configs[name] = []

    def _start_tasks(self, name: str, only: list[int] | None = None) -> None:
        target = self._targets[name]
        for i, task_config in enumerate(self._task_configs.get(name, [])):
            if only is None or i in only:
                self.worker.start_task(TaskId(name, i), self._configs[name], task_config, target)

    def _stop_connector(self, name: str) -> None:
        self.worker.stop_tasks(self.worker.task_ids(name))
        self.worker.stop_connector(name)

    def _reconfigure_async(self, name: str) -> None:
        threading.Thread(target=self._reconfigure, args=(name,), daemon=True, name=f"reconfigure-{name}").start()

    def _reconfigure(self, name: str) -> None:
        with self.lock:
            if name not in self._configs or self._targets[name] is TargetState.STOPPED:
                return
            old = self._task_configs.get(name, [])
            self._update_task_configs(name)
            if self._task_configs[name] != old:
                self.worker.stop_tasks(self.worker.task_ids(name))
                self._start_tasks(name)

    # target states --------------------------------------------------------------------------
    def _set_target(self, name: str, target: TargetState) -> None:
        with self.lock:
            self._require(name)
            previous = self._targets[name]
            self._targets[name] = target
            if target is TargetState.STOPPED:
                if previous is not TargetState.STOPPED:
                    self._stop_connector(name)
                    self._task_configs[name] = []
                    with self.status_lock:
                        for t in [t for t in self.task_status if t.connector == name]:
                            del self.task_status[t]
                    self.worker.start_connector(name, self._configs[name], TargetState.STOPPED)
                return
            if previous is TargetState.STOPPED:
                self._stop_connector(name)
                self._start_connector(name)
                return
            self.worker.set_target_state(name, target)
            if target is TargetState.PAUSED and self.worker.is_running(name):
                self.on_connector_state(name, State.PAUSED, None)

    # restarts -------------------------------------------------------------------------------
    def restart_connector(self, name: str) -> None:
        with self.lock:
            self._require(name)
            self.worker.stop_connector(name)
            if self._targets[name] is TargetState.STOPPED:
                self.worker.start_connector(name, self._configs[name], TargetState.STOPPED)
                return
            self.worker.start_connector(name, self._configs[name], self._targets[name])

    def restart_task(self, name: str, task: int) -> None:
        with self.lock:
            self._require(name)
            configs = self._task_configs.get(name, [])
            if task >= len(configs):
                raise NotFoundError(f"Task {name}-{task} not found")
            tid = TaskId(name, task)
            self.worker.stop_tasks([tid])
            self.worker.start_task(tid, self._configs[name], configs[task], self._targets[name])

    def restart_connector_and_tasks(self, name: str, include_tasks: bool, only_failed: bool) -> dict[str, Any]:
        """Kafka's RestartRequest: the plan (RESTARTING states) now, the restarts in the background."""
        with self.lock:
            status = self.connector_status_json(name)
            restart_connector = not only_failed or status["connector"]["state"] == State.FAILED.value
            tasks = [t["id"] for t in status["tasks"]
                     if include_tasks and (not only_failed or t["state"] == State.FAILED.value)]
            if restart_connector:
                self.on_connector_state(name, State.RESTARTING, None)
                status["connector"]["state"] = State.RESTARTING.value
                status["connector"].pop("trace", None)
            for t in status["tasks"]:
                if t["id"] in tasks:
                    self.on_task_state(TaskId(name, t["id"]), State.RESTARTING, None)
                    t["state"] = State.RESTARTING.value
                    t.pop("trace", None)

        def run() -> None:
            with self.lock:
                if name not in self._configs:
                    return
                self.worker.stop_tasks([TaskId(name, t) for t in tasks])
                if restart_connector:
                    self.worker.stop_connector(name)
                    self.worker.start_connector(name, self._configs[name], self._targets[name])
                for t in tasks:
                    configs = self._task_configs.get(name, [])
                    if t < len(configs):
                        self.worker.start_task(TaskId(name, t), self._configs[name], configs[t], self._targets[name])
        if restart_connector or tasks:
            threading.Thread(target=run, daemon=True, name=f"restart-{name}").start()
        return status
