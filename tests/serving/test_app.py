"""The HTTP API over tiny real models: batched users with their own preferences."""

import io
import socket
import sys
import threading
import time
import urllib.request

import pytest
import torch
from fastapi.testclient import TestClient

from conftest import make_tiny_llama
from uniarm.adapters import AdapterConfig, PreferenceARM
from uniarm.decoding import DecodingConfig, GuidedDecoder, PreferenceGuide
from uniarm.serving.app import create_app

OBJECTIVES = ("helpful", "harmless")


@pytest.fixture(scope="module")
def decoder(tokenizer):
    base = make_tiny_llama(tokenizer, seed=0)
    arm = PreferenceARM(make_tiny_llama(tokenizer, seed=1), tokenizer, OBJECTIVES, AdapterConfig())
    torch.manual_seed(5)
    with torch.no_grad():
        for p in arm.trainable_parameters():
            p.normal_(std=0.5)
    return GuidedDecoder(
        base,
        tokenizer,
        [PreferenceGuide(arm, tokenizer)],
        DecodingConfig(max_new_tokens=6, batch_size=8),
    )


@pytest.fixture
def client(decoder):
    app = create_app(decoder, {"base_model": "tiny", "method": "uniarm"}, max_wait_s=0.3)
    with TestClient(app) as c:
        yield c


def test_page_and_info(client):
    page = client.get("/")
    assert page.status_code == 200 and "Compare three preferences" in page.text
    info = client.get("/v1/info").json()
    assert info["objectives"] == list(OBJECTIVES) and info["method"] == "uniarm"


def test_concurrent_users_share_a_batch_and_match_lone_decoding(client, decoder):
    prefs = [{"helpful": 1.0}, {"helpful": 0.5, "harmless": 0.5}, {"harmless": 1.0}]
    replies = [None] * 3

    def call(i):
        replies[i] = client.post("/v1/generate", json={"prompt": "Hello", "preference": prefs[i]})

    threads = [threading.Thread(target=call, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status_code == 200 for r in replies), [r.text for r in replies]
    health = client.get("/healthz").json()
    assert health["rows"] == 3 and health["batches"] < 3  # at least two shared a batch
    for pref, reply in zip(([1.0, 0.0], [0.5, 0.5], [0.0, 1.0]), replies, strict=True):
        alone = decoder.generate(["Hello"], [pref])[0]
        assert reply.json()["text"] == alone.text
        assert reply.json()["new_tokens"] == len(alone.token_ids)


@pytest.mark.parametrize(
    "body,message",
    [
        ({"prompt": "hi", "preference": {"helpful": 0.7, "harmless": 0.7}}, "sums to"),
        ({"prompt": "hi", "preference": {"funny": 1.0}}, "unknown objective"),
        ({"prompt": "hi"}, "needs a preference"),
        ({"preference": [0.5, 0.5]}, "exactly one of"),
        ({"prompt": "hi", "preference": [0.5, 0.5], "max_new_tokens": 0}, "out of range"),
        ({"prompt": "hi", "preference": [0.5, 0.5], "top_p": 2}, "top_p"),
    ],
)
def test_bad_requests_get_a_clear_400(client, body, message):
    response = client.post("/v1/generate", json=body)
    assert response.status_code == 400 and message in response.json()["error"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({"prompt": "hi", "preference": "helpful"}, "preference"),
        ({"prompt": 3, "preference": [0.5, 0.5]}, "prompt"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
    ],
)
def test_schema_errors_get_the_same_error_and_fix_body(client, body, field):
    response = client.post("/v1/generate", json=body)
    assert response.status_code == 422
    payload = response.json()
    assert set(payload) == {"error", "fix"}
    assert f"{field}:" in payload["error"] and "/v1/info" in payload["fix"]


def test_a_body_that_is_not_json_gets_the_same_error_and_fix_body(client):
    response = client.post(
        "/v1/generate", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422 and set(response.json()) == {"error", "fix"}


@pytest.mark.parametrize(
    "kwargs",
    [
        {"content": b'{"prompt": "hi"}', "headers": {"content-type": "text/plain"}},
        {"data": {"prompt": "hi"}},  # a form, as `curl -d` sends without -H
    ],
)
def test_a_body_not_sent_as_json_gets_a_fix_naming_the_header(client, kwargs):
    response = client.post("/v1/generate", **kwargs)
    assert response.status_code == 415
    payload = response.json()
    assert set(payload) == {"error", "fix"} and "not as JSON" in payload["error"]
    assert "Content-Type: application/json" in payload["fix"]


def test_a_json_body_without_a_content_type_gets_the_same_fix(client):
    body = b'{"prompt": "Hello", "preference": [0.5, 0.5], "max_new_tokens": 2}'
    response = client.post("/v1/generate", content=body)
    assert response.status_code == 415
    assert "without a Content-Type header" in response.json()["error"]
    assert "Content-Type: application/json" in response.json()["fix"]
    headers = {"content-type": "application/json; charset=utf-8"}
    assert client.post("/v1/generate", content=body, headers=headers).status_code == 200


@pytest.mark.parametrize(
    "body,field",
    [
        ({"prompt": "hi", "preference": {"helpful": "0.5", "harmless": "0.5"}}, "preference"),
        ({"prompt": "hi", "preference": ["0.5", "0.5"]}, "preference"),
        ({"prompt": "hi", "preference": {"helpful": True, "harmless": False}}, "preference"),
        ({"prompt": "hi", "preference": [True, False]}, "preference"),
        ({"prompt": "hi", "preference": [1, 0], "max_new_tokens": "2"}, "max_new_tokens"),
        ({"prompt": "hi", "preference": [1, 0], "max_new_tokens": 2.5}, "max_new_tokens"),
        ({"prompt": "hi", "preference": [1, 0], "do_sample": "yes"}, "do_sample"),
        ({"prompt": "hi", "preference": [1, 0], "temperature": "0.7"}, "temperature"),
    ],
)
def test_weights_and_settings_must_be_real_numbers(client, body, field):
    response = client.post("/v1/generate", json=body)
    assert response.status_code == 422 and f"{field}:" in response.json()["error"]


def test_whole_number_weights_are_numbers(client, decoder):
    reply = client.post("/v1/generate", json={"prompt": "Hello", "preference": {"helpful": 1}})
    assert reply.status_code == 200
    assert reply.json()["text"] == decoder.generate(["Hello"], [[1.0, 0.0]])[0].text


def prompt_tokens(tokenizer, text: str) -> int:
    """Tokens of a user message as the models see it: chat template, generation prompt."""
    messages = [{"role": "user", "content": text}]
    ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)
    return len(ids["input_ids"] if hasattr(ids, "keys") else ids)


def test_a_prompt_over_the_token_limit_is_refused_with_413(decoder, tokenizer):
    prompt = "Tell me about the weather " * 20
    count = prompt_tokens(tokenizer, prompt)
    body = {"prompt": prompt, "preference": [0.5, 0.5], "max_new_tokens": 2}
    with TestClient(create_app(decoder, max_prompt_tokens=count)) as c:
        assert c.post("/v1/generate", json=body).status_code == 200  # at the limit: served
        assert c.get("/v1/info").json()["limits"]["max_prompt_tokens"] == count
    with TestClient(create_app(decoder, max_prompt_tokens=count - 1)) as c:
        response = c.post("/v1/generate", json=body)
        assert response.status_code == 413
        payload = response.json()
        assert payload["error"] == (
            f"the prompt has {count} tokens, more than this server's limit of {count - 1}"
        )
        assert "--max-prompt-tokens" in payload["fix"]
        assert c.get("/healthz").json()["rows"] == 0  # refused before any decoding


def test_serve_sets_the_prompt_limit(tokenizer, monkeypatch):
    import uniarm.models
    from uniarm.cli.serve import ServeConfig, build_app
    from uniarm.errors import UniarmError

    with pytest.raises(UniarmError, match="max_prompt_tokens=0"):
        ServeConfig(max_prompt_tokens=0)
    assert ServeConfig().max_prompt_tokens == 1024
    tiny = make_tiny_llama(tokenizer, seed=0)
    monkeypatch.setattr(uniarm.models, "load_model", lambda spec, **kw: (tiny, tokenizer))
    app = build_app(ServeConfig(max_prompt_tokens=8), DecodingConfig(max_new_tokens=2))
    with TestClient(app) as c:
        assert c.get("/v1/info").json()["limits"]["max_prompt_tokens"] == 8
        assert c.post("/v1/generate", json={"prompt": "hi " * 20}).status_code == 413


def test_one_preference_batches_merge_once_and_stopping_gives_the_arm_back(decoder):
    (guide,) = decoder.guides
    arm = guide.arm
    decoder.release()
    before = {k: v.clone() for k, v in arm.model.state_dict().items()}
    merges = guide.merges
    app = create_app(decoder, {"base_model": "tiny", "method": "uniarm"}, max_wait_s=0.0)
    with TestClient(app) as c:
        for _ in range(2):  # one request at a time: each batch holds one preference
            reply = c.post("/v1/generate", json={"prompt": "Hello", "preference": [0.5, 0.5]})
            assert reply.status_code == 200
        assert guide.merges == merges + 1 and arm.merged == (0.5, 0.5)  # kept between batches
    assert arm.merged is None  # the server's stop released it
    after = arm.model.state_dict()
    assert all(torch.equal(after[k], v) for k, v in before.items())


def test_a_misspelt_setting_is_refused_not_ignored(client):
    response = client.post("/v1/generate", json={"prompt": "hi", "max_tokens": 2})
    assert response.status_code == 422 and "max_tokens" in response.json()["error"]


def test_beta_and_stop_are_honoured_like_the_decoder_does(client, decoder):
    import dataclasses

    bad = client.post("/v1/generate", json={"prompt": "hi", "preference": [0.5, 0.5], "beta": -1})
    assert bad.status_code == 400 and "beta" in bad.json()["error"]

    full = decoder.generate(["Hello"], [[0.5, 0.5]])[0].text
    stop = full[2:4]  # a string the unstopped reply contains
    body = {"prompt": "Hello", "preference": [0.5, 0.5], "stop": [stop], "beta": 0.5}
    reply = client.post("/v1/generate", json=body).json()
    config = dataclasses.replace(decoder.config, stop=[stop], beta=0.5)
    alone = decoder.generate(["Hello"], [[0.5, 0.5]], config=config)[0]
    assert reply["text"] == alone.text and reply["finish_reason"] == alone.finish_reason


def test_a_base_only_server_refuses_a_preference(tokenizer):
    base = GuidedDecoder(make_tiny_llama(tokenizer, seed=0), tokenizer)
    with TestClient(create_app(base)) as c:
        response = c.post("/v1/generate", json={"prompt": "hi", "preference": {"helpful": 1}})
        assert response.status_code == 400 and "--arm" in response.json()["fix"]
        assert c.post("/v1/generate", json={"prompt": "hi", "max_new_tokens": 2}).status_code == 200


# --- `uniarm serve`: the port is taken first, the address told once it listens ---------------


def test_serve_on_a_port_in_use_fails_clearly_before_loading(no_model_loads, capsys):
    from uniarm.cli import main

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    err = capsys.readouterr().err
    assert f"port {port} on 127.0.0.1 is already in use" in err and "--port" in err


def test_serve_with_a_wrong_arm_fails_before_loading(no_model_loads, tmp_path, capsys):
    from uniarm.cli import main

    assert main(["serve", "--port", "0", "--arm", str(tmp_path / "none")]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


class ConnectOnAnnounce(io.StringIO):
    """A stdout that, when the address is printed, tries to connect to it at that instant."""

    def __init__(self):
        super().__init__()
        self.lines, self.connected = [], []

    def write(self, text):
        if text.startswith("serving on http://"):
            self.lines.append(text)
            host, port = text.removeprefix("serving on http://").rsplit(":", 1)
            try:
                socket.create_connection((host, int(port)), timeout=1).close()
                self.connected.append(True)
            except OSError:
                self.connected.append(False)
        return super().write(text)


def test_serve_tells_its_address_once_listening(decoder, monkeypatch):
    import uniarm.cli.serve as serve_cli
    from uniarm.cli import main

    app = create_app(decoder, {"base_model": "tiny", "method": "uniarm"})
    monkeypatch.setattr(serve_cli, "build_app", lambda serve, decoding: app)
    servers, make_server = [], serve_cli.make_server
    monkeypatch.setattr(
        serve_cli, "make_server", lambda *a: servers.append(make_server(*a)) or servers[-1]
    )
    stdout = ConnectOnAnnounce()
    monkeypatch.setattr(sys, "stdout", stdout)

    codes = []
    thread = threading.Thread(target=lambda: codes.append(main(["serve", "--port", "0"])))
    thread.start()
    deadline = time.monotonic() + 30
    while not stdout.connected and time.monotonic() < deadline and thread.is_alive():
        time.sleep(0.05)
    try:
        assert stdout.connected == [True], stdout.lines  # told once, and listening by then
        url = stdout.lines[0].removeprefix("serving on ").strip()
        with urllib.request.urlopen(f"{url}/healthz", timeout=10) as reply:
            assert reply.status == 200
    finally:
        if servers:
            servers[0].should_exit = True
        thread.join(30)
    assert codes == [0]
