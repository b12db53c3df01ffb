"""The engine's tools: a run's MCP servers, and one round of a step's tool calls.

    tools = Tooling(settings, warn)           # Engine.start, when settings.mcp_servers
    await tools.start()                       # the servers; each problem is one `warn` line
    tools.specs                               # what the request offers the model
    await tools.run_round(turn, step, obs, record)   # approve, run in parallel, record
    await tools.aclose()                      # the servers stop (their processes too)

Approval: a call whose tool is allowed (the profile's `allow_tools`, --allow-tool, --allow-tools,
an earlier "always") runs at once; any other is put to `Observer.approve`, one at a time, before
any of the round runs. "always" allows the tool for the rest of the run and remembers it in the
profile (config.allow_tool). The approved calls then run together; a denied one, a call of no
such tool, and one past `tool_timeout` are error results the model reads.

Imports no MCP: llmchat.tools.servers (the SDK) is imported by `start` only.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any, Callable, List, Sequence, Set, Tuple

from llmchat.conversation import ToolSpec
from llmchat.engine.turns import DENIED, DENIED_TEXT, RUNNING, TOOL_DONE, TOOL_ERROR, Step, ToolActivity, Turn
from llmchat.tools import Tool, ToolResult


class Tooling:
    """The tools of one engine: its servers, what is allowed, and the rounds of calls."""

    def __init__(self, settings: Any, warn: Callable[[str], None], clock: Callable[[], float]) -> None:
        self.settings = settings
        self._warn = warn
        self._clock = clock
        self.servers: Any = None  # llmchat.tools.servers.ToolServers once started
        self.allowed: Set[str] = set(settings.allow_tools)
        self.allow_all = bool(settings.allow_all_tools)
        self.stale = False  # a cancel stopped calls mid-way: the servers restart before the next turn
        self._tasks: Sequence["asyncio.Future[None]"] = ()  # the calls running now

    @property
    def tools(self) -> List[Tool]:
        return self.servers.tools if self.servers is not None else []

    @property
    def specs(self) -> Tuple[ToolSpec, ...]:
        return tuple(ToolSpec(tool.name, tool.description, tool.input_schema) for tool in self.tools)

    async def start(self) -> None:
        """Start the run's servers; a server that fails is one `warn` line and the chat goes
        on without it (and without tools, when none started)."""
        try:
            from llmchat.tools.servers import ToolServers
        except ImportError as exc:  # the SDK is missing: no tools, the chat goes on
            self._warn(f"llmchat: tools are off: cannot load the MCP SDK ({exc})")
            return
        # A server's trouble, as it happens (failing to start, or crashing later): one line.
        servers = ToolServers(self.settings.mcp_servers, secrets=self.settings.secrets, on_problem=self._problem)
        try:
            await servers.start()
        except Exception as exc:  # not a server's trouble (those are problems): say it, go on
            self._warn(f"llmchat: tools are off: {exc.__class__.__name__}: {exc}")
            await servers.aclose()
            return
        self.servers = servers
        self.stale = False

    def _problem(self, line: str) -> None:
        self._warn(f"llmchat: {line}; going on without it")

    async def restart(self) -> None:
        """Fresh servers after a cancel stopped calls (and closed the old ones)."""
        await self.aclose()
        await self.start()

    async def aclose(self) -> None:
        servers, self.servers = self.servers, None
        if servers is not None:
            await servers.aclose()

    def is_allowed(self, name: str) -> bool:
        return self.allow_all or name in self.allowed

    def activity(self, call: Any) -> ToolActivity:
        """A call as it streams in: "asked", its tool looked up (None: no such tool)."""
        return ToolActivity(call, self.servers.tool(call.name) if self.servers is not None else None)

    def refuse_round(self, turn: Turn, step: Step, obs: Any, record: Any, reason: str) -> None:
        """The step's calls do not run (the answer reached `max_steps`): each ends at once as
        an error result saying `reason`, told to the observer and recorded like any other."""
        add_part = self._record_calls(step, record)
        writer = record.writer if record is not None else None
        stopped = getattr(writer, "reached_max_steps", None)  # history's (as `add_part`)
        if stopped is not None:
            stopped()  # stored with the answer: a reopened one says why it ends here
        for activity in step.activities:
            self._end(turn, activity, ToolResult(f"error: not run: {reason}", is_error=True), obs, add_part, started=True)

    def _record_calls(self, step: Step, record: Any) -> Any:
        """History gets the step's calls (after its text); returns its `add_part`, if any."""
        writer = record.writer if record is not None else None
        add_part = getattr(writer, "add_part", None)  # history's tool parts (toolhist)
        if add_part is not None:
            for activity in step.activities:
                call = activity.call
                server = activity.tool.server if activity.tool is not None else None
                add_part("tool_call", call.arguments, {"id": call.id, "name": call.name, "server": server})
        return add_part

    async def run_round(self, turn: Turn, step: Step, obs: Any, record: Any) -> None:
        """Ask for, run and record the step's calls. Cancelled: the running calls are
        abandoned (ended as errors "cancelled"), and `stale` asks for a restart of the servers
        (the only way to stop a tool's work)."""
        activities = step.activities
        add_part = self._record_calls(step, record)
        approved: List[ToolActivity] = []
        for activity in activities:
            if turn.ended:  # ended (Engine.end) while a question was up: nothing more runs
                return
            if activity.tool is None:
                self._end(turn, activity, ToolResult(f"error: no such tool: {activity.call.name!r}", is_error=True), obs, add_part, started=True)
            elif self.is_allowed(activity.call.name) or await self._ask(turn, activity, obs):
                approved.append(activity)
            else:
                activity.status = DENIED
                self._end(turn, activity, ToolResult(DENIED_TEXT, is_error=True), obs, add_part, started=True)
        if not approved or turn.ended:
            return
        tasks = [asyncio.ensure_future(self._run(turn, activity, obs, add_part)) for activity in approved]
        self._tasks = tasks
        try:
            # A call stopped by `stop` (Engine.end) gives its CancelledError here as a value.
            await asyncio.gather(*tasks, return_exceptions=True)
        except BaseException:  # the run itself was cancelled
            for task in tasks:
                task.cancel()
            self._cancelled(turn, approved, obs, add_part)
            raise
        finally:
            self._tasks = ()
        self._cancelled(turn, approved, obs, add_part)

    def stop(self) -> None:
        """Stop the calls running now (the turn was ended): they end as cancelled errors."""
        for task in self._tasks:
            task.cancel()

    def _cancelled(self, turn: Turn, activities: List[ToolActivity], obs: Any, add_part: Any) -> None:
        """End the calls a cancel stopped; their servers go (`stale`: fresh ones next turn)."""
        now = self._clock()
        for activity in activities:
            if not activity.ended:
                self.stale = True
                duration = now - activity.started_at if activity.started_at is not None else 0.0
                self._end(turn, activity, ToolResult("error: the call was cancelled", is_error=True, duration=duration), obs, add_part)

    async def _ask(self, turn: Turn, activity: ToolActivity, obs: Any) -> bool:
        answer = await obs.approve(turn, activity)
        if answer == "always":
            name = activity.call.name
            self.allowed.add(name)
            self._remember(name)
        return answer in ("once", "always")

    def _remember(self, name: str) -> None:
        """An "always": the tool goes in the profile's `allow_tools` (config.allow_tool)."""
        profile = self.settings.profile
        if not profile:
            self._warn(f"llmchat: {name} is allowed for this run; no profile is in use to remember it in")
            return
        from llmchat.config import ConfigError, allow_tool

        try:
            allow_tool(profile, name, self.settings.config_path)
        except ConfigError as exc:
            self._warn(f"llmchat: {name} is allowed for this run, not remembered: {exc}")

    async def _run(self, turn: Turn, activity: ToolActivity, obs: Any, add_part: Any) -> None:
        activity.status = RUNNING
        activity.started_at = self._clock()
        obs.tool_started(turn, activity)
        try:
            arguments = json.loads(activity.call.arguments or "{}")
        except ValueError:
            arguments = None
        if not isinstance(arguments, dict):
            result = ToolResult("error: the arguments are not a JSON object", is_error=True)
        else:
            result = await self.servers.call(activity.call.name, arguments)
        result.duration = self._clock() - activity.started_at
        self._end(turn, activity, result, obs, add_part)

    def _end(self, turn: Turn, activity: ToolActivity, result: ToolResult, obs: Any, add_part: Any, *, started: bool = False) -> None:
        """The call ended: its status, result and duration, the observer told, history given it."""
        if activity.status != DENIED:
            activity.status = TOOL_ERROR if result.is_error else TOOL_DONE
        activity.result = result
        activity.duration = result.duration
        if started:  # ended without running: its start and end at once
            obs.tool_started(turn, activity)
        obs.tool_finished(turn, activity)
        if add_part is not None:
            call = activity.call
            meta = {"call_id": call.id, "name": call.name, "is_error": bool(result.is_error), "status": activity.status, "duration": result.duration}
            add_part("tool_result", result.text, meta)
