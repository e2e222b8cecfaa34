"""train.export.push_to_hub, offline: huggingface_hub's real client against an in-process fake Hub.

Every HTTP request huggingface_hub makes goes through `set_client_factory`, here a client with an
`httpx2.MockTransport` whose handler plays the Hub: repo creation, branches, README YAML validation,
preupload (regular vs LFS), the LFS batch API with a basic-transfer PUT to fake storage and the verify
call, and the ndjson commit endpoint. A request the fake does not know fails the test, and Python
sockets cannot connect while a test runs.

hf_xet uploads through its own (Rust) HTTP client, which no Python transport can intercept, so the
tests switch xet off (`HF_HUB_DISABLE_XET`): the .safetensors file then goes through the LFS batch API.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx2
import huggingface_hub
import pytest
import torch
from huggingface_hub import constants as hf_constants
from huggingface_hub.utils import _detect_agent as hf_detect_agent
from huggingface_hub.utils import _http as hf_http
from huggingface_hub.utils._runtime import is_xet_available

from rbedit.checkpoint import save_checkpoint
from rbedit.model import ModelConfig, RbVAE
from train.export import push_to_hub

# huggingface_hub streams the LFS PUT body from a file object (data=...), which httpx2 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

ROOT = Path(__file__).resolve().parents[1]
TOKEN = "hf_fakeTokenForOfflineTests000000000"
USER = "rbedit-tester"  # the namespace the fake token belongs to
STORAGE = "https://lfs-storage.invalid"  # where the fake LFS batch API sends uploads
# A tiny PNG (1x1, black, greyscale): binary, so the fake Hub asks for it through LFS like the real one.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg=="
)


def _json(status: int, body, headers: dict | None = None) -> httpx2.Response:
    return httpx2.Response(status, json=body, headers=headers or {})


class FakeHub:
    """Just enough of the Hub's HTTP API for create_repo, create_branch and upload_folder."""

    def __init__(self, endpoint: str):
        self.endpoint = endpoint.rstrip("/")
        self.hub_host = urlsplit(self.endpoint).netloc
        self.storage_host = urlsplit(STORAGE).netloc
        self.lock = threading.Lock()
        self.log: list[tuple[str, str]] = []  # (endpoint name, request line), in arrival order
        self.unexpected: list[str] = []
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}  # repo id -> branch -> path -> bytes
        self.lfs: dict[str, bytes] = {}  # oid -> content, as stored by the PUTs
        self.verified: set[str] = set()
        self.commits: list[dict] = []
        self.batch_requests: list[dict] = []
        self.preuploads: list[dict] = []
        self.validated_cards: list[str] = []

    # -- helpers ---------------------------------------------------------------------------------

    def add_repo(self, repo_id: str) -> None:
        self.repos[repo_id] = {"main": {".gitattributes": b"*.safetensors filter=lfs diff=lfs merge=lfs -text\n"}}

    def _branch(self, repo_id: str, rev: str):
        if repo_id not in self.repos:
            return None, _json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
        if rev not in self.repos[repo_id]:
            return None, _json(404, {"error": f"Invalid rev id: {rev}"}, {"X-Error-Code": "RevisionNotFound"})
        return self.repos[repo_id][rev], None

    @staticmethod
    def _wants_lfs(path: str, size: int, sample: bytes) -> bool:
        return path.endswith(".safetensors") or size > 10_000_000 or b"\x00" in sample

    # -- transport handler -----------------------------------------------------------------------

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        line = f"{request.method} {request.url}"
        with self.lock:
            try:
                name, response = self._route(request)
            except AssertionError as err:
                self.unexpected.append(f"{line}: {err}")
                raise
            if name is None:
                self.unexpected.append(line)
                raise AssertionError(f"unexpected request to the fake Hub: {line}")
            self.log.append((name, line))
            return response

    def _route(self, request: httpx2.Request):
        url = request.url
        method = request.method
        path = url.raw_path.decode().split("?")[0]
        parts = [unquote(p) for p in path.strip("/").split("/")]

        if url.host == self.storage_host:
            # Presigned storage URL: no Hub token must be sent there.
            assert "authorization" not in request.headers, "Hub token leaked to the storage URL"
            if method == "PUT" and len(parts) == 2 and parts[0] == "upload":
                oid, body = parts[1], request.content
                assert hashlib.sha256(body).hexdigest() == oid, "uploaded bytes do not match their LFS oid"
                self.lfs[oid] = body
                return "lfs-put", httpx2.Response(200)
            return None, None

        if url.scheme != "https" or url.netloc.decode() != self.hub_host:
            return None, None
        if method == "GET" and path == "/api/agent-harnesses":
            # huggingface_hub fetches this registry (unauthenticated) to fill its user-agent.
            return "agent-harnesses", _json(200, {"standardEnvVars": ["AI_AGENT", "AGENT"], "harnesses": {}})
        assert request.headers.get("authorization") == f"Bearer {TOKEN}", "Hub request without the token"

        if method == "POST" and path == "/api/repos/create":
            body = json.loads(request.content)
            assert body.get("type") == "model", body
            repo_id = f"{body.get('organization') or USER}/{body['name']}"
            url_ = f"{self.endpoint}/{repo_id}"
            if repo_id in self.repos:
                return "repo-create", _json(409, {"error": "You already created this model repo", "url": url_})
            self.add_repo(repo_id)
            return "repo-create", _json(200, {"url": url_, "name": repo_id, "id": "0" * 24})

        if method == "POST" and path == "/api/validate-yaml":
            body = json.loads(request.content)
            assert body.get("repoType") == "model", body
            self.validated_cards.append(body["content"])
            return "validate-yaml", _json(200, {"errors": [], "warnings": []})

        m = re.fullmatch(r"api/models/([^/]+/[^/]+)/(branch|preupload|commit)/(.+)", "/".join(parts))
        if m and method == "POST":
            repo_id, kind, rev = m.groups()
            if kind == "branch":
                if repo_id not in self.repos:
                    return "branch", _json(404, {"error": "Repository not found"}, {"X-Error-Code": "RepoNotFound"})
                if rev in self.repos[repo_id]:
                    return "branch", _json(409, {"error": "Reference already exists"})
                self.repos[repo_id][rev] = dict(self.repos[repo_id]["main"])
                return "branch", _json(200, {})
            files, error = self._branch(repo_id, rev)
            if error is not None:
                return kind, error
            if kind == "preupload":
                return "preupload", self._preupload(repo_id, rev, json.loads(request.content), files)
            return "commit", self._commit(repo_id, rev, request, files)

        m = re.fullmatch(r"([^/]+/[^/]+)\.git/info/lfs/objects/(batch|verify)", "/".join(parts))
        if m and method == "POST":
            repo_id, kind = m.groups()
            body = json.loads(request.content)
            if kind == "verify":
                stored = self.lfs.get(body["oid"])
                if stored is None or len(stored) != body["size"]:
                    return "lfs-verify", _json(404, {"message": "object not found"})
                self.verified.add(body["oid"])
                return "lfs-verify", _json(200, {})
            return "lfs-batch", self._lfs_batch(repo_id, request, body)

        return None, None

    def _preupload(self, repo_id: str, rev: str, body: dict, files: dict) -> httpx2.Response:
        self.preuploads.append({"repo": repo_id, "rev": rev, **body})
        answer = []
        for f in body["files"]:
            sample = base64.b64decode(f["sample"])
            answer.append({
                "path": f["path"],
                "uploadMode": "lfs" if self._wants_lfs(f["path"], f["size"], sample) else "regular",
                "shouldIgnore": False,
                "oid": None,  # nothing of the release is on the Hub yet
            })
        return _json(200, {"files": answer, "commitOid": "0" * 40})

    def _lfs_batch(self, repo_id: str, request: httpx2.Request, body: dict) -> httpx2.Response:
        assert request.headers.get("accept") == "application/vnd.git-lfs+json", request.headers
        self.batch_requests.append({"repo": repo_id, **body})
        assert body["operation"] == "upload" and body["hash_algo"] == "sha256", body
        assert "basic" in body["transfers"], body
        objects = []
        for obj in body["objects"]:
            entry = {"oid": obj["oid"], "size": obj["size"], "authenticated": True}
            if obj["oid"] not in self.lfs:
                entry["actions"] = {
                    "upload": {"href": f"{STORAGE}/upload/{obj['oid']}", "expires_in": 900},
                    "verify": {"href": f"{self.endpoint}/{repo_id}.git/info/lfs/objects/verify", "header": {}},
                }
            objects.append(entry)
        return _json(200, {"transfer": "basic", "objects": objects})

    def _commit(self, repo_id: str, rev: str, request: httpx2.Request, files: dict) -> httpx2.Response:
        assert request.headers.get("content-type") == "application/x-ndjson", request.headers
        lines = [json.loads(line) for line in request.content.decode().splitlines() if line.strip()]
        assert lines and lines[0]["key"] == "header", lines[:1]
        sent: dict[str, bytes] = {}
        lfs_oids: dict[str, str] = {}
        for item in lines[1:]:
            value = item["value"]
            if item["key"] == "file":
                assert value["encoding"] == "base64", value
                sent[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "lfsFile":
                content = self.lfs.get(value["oid"])
                if content is None or value["oid"] not in self.verified or len(content) != value["size"]:
                    return _json(400, {"error": f"LFS object {value['oid']} of {value['path']} was never uploaded"})
                sent[value["path"]] = content
                lfs_oids[value["path"]] = value["oid"]
            else:
                return _json(400, {"error": f"unexpected commit operation {item['key']}"})
        files.update(sent)
        oid = f"{len(self.commits) + 1:040x}"
        self.commits.append({
            "repo": repo_id, "rev": rev, "header": lines[0]["value"], "files": sent, "lfs": lfs_oids, "oid": oid,
        })
        return _json(200, {"success": True, "commitOid": oid, "commitUrl": f"{self.endpoint}/{repo_id}/commit/{oid}"})


@pytest.fixture
def hub(monkeypatch, tmp_path):
    """The fake Hub behind huggingface_hub's client; the default client factory comes back afterwards."""
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    # hf_xet would open its own connections (not through httpx2): use the LFS path, and make sure of it.
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    monkeypatch.setattr(hf_constants, "HF_HUB_DISABLE_XET", True)
    assert not is_xet_available()

    def no_xet(*args, **kwargs):
        raise AssertionError("hf_xet was asked for a session: it would bypass the fake transport")

    monkeypatch.setattr("huggingface_hub.utils._xet.get_xet_session", no_xet)

    def no_socket(self, address, *args, **kwargs):
        raise AssertionError(f"a real connection to {address!r} was attempted")

    monkeypatch.setattr(socket.socket, "connect", no_socket)
    monkeypatch.setattr(socket.socket, "connect_ex", no_socket)
    # The agent-harness registry is fetched once per process and cached under HF_HOME: fetch it
    # from the fake in every test, and cache it in tmp_path, not in the user's HF_HOME.
    monkeypatch.setattr(hf_constants, "AGENT_HARNESSES_PATH", str(tmp_path / "agent_harnesses.json"))
    monkeypatch.setattr(hf_detect_agent, "_registry", None)

    fake = FakeHub(hf_constants.ENDPOINT)
    previous = hf_http._GLOBAL_CLIENT_FACTORY
    huggingface_hub.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(fake)))
    try:
        yield fake
    finally:
        huggingface_hub.set_client_factory(previous)  # also closes the mock client (close_session)
    assert hf_http._GLOBAL_CLIENT is None and hf_http._GLOBAL_CLIENT_FACTORY is previous
    # Some callers swallow errors (the registry fetch): the record is the final word.
    assert not fake.unexpected, fake.unexpected


@pytest.fixture
def release(tmp_path) -> Path:
    with torch.random.fork_rng():  # deterministic weights, without touching other tests' RNG
        torch.manual_seed(0)
        model = RbVAE(ModelConfig(image_size=8, channels=(4, 4), z_dim=2, e_dim=2))
    folder = save_checkpoint(model, tmp_path / "release", card="# card\n")
    # Things in the folder that are not part of a release must stay local.
    (folder / "notes.txt").write_text("local notes\n")
    (folder / ".model.safetensors.x1y2.tmp").write_bytes(b"half-written")
    return folder


def _local(folder: Path, names) -> dict[str, bytes]:
    return {name: (folder / name).read_bytes() for name in names}


def test_push_new_repo_to_a_branch_sends_exactly_the_release(hub, release):
    (release / "samples.png").write_bytes(PNG)
    expected = _local(release, ["config.json", "model.safetensors", "README.md", "samples.png"])

    url = push_to_hub(release, "rbedit-org/tiny-digits", revision="v1")

    assert not hub.unexpected
    repo = "rbedit-org/tiny-digits"
    assert len(hub.commits) == 1
    commit = hub.commits[0]
    assert url == f"{hub.endpoint}/{repo}/commit/{commit['oid']}"
    assert (commit["repo"], commit["rev"]) == (repo, "v1")
    assert commit["header"]["summary"] == "Upload rbedit checkpoint"
    assert commit["files"] == expected  # exactly these files, byte for byte
    # The weights went through LFS: oid = sha256 of the local file, stored bytes identical.
    weights_sha = hashlib.sha256(expected["model.safetensors"]).hexdigest()
    assert commit["lfs"]["model.safetensors"] == weights_sha
    assert hub.lfs[weights_sha] == expected["model.safetensors"]
    assert weights_sha in hub.verified
    assert set(commit["lfs"]) == {"model.safetensors", "samples.png"}
    # The branch was created from main and now holds the release; main is untouched.
    assert hub.repos[repo]["v1"] == {**hub.repos[repo]["main"], **expected}
    assert set(hub.repos[repo]["main"]) == {".gitattributes"}
    # preupload and the LFS batch were asked about the right repo and revision only.
    assert {(p["repo"], p["rev"]) for p in hub.preuploads} == {(repo, "v1")}
    assert sorted(f["path"] for p in hub.preuploads for f in p["files"]) == sorted(expected)
    assert {b["repo"] for b in hub.batch_requests} == {repo}
    assert {b.get("ref", {}).get("name") for b in hub.batch_requests} == {"v1"}
    assert "xet" not in {t for b in hub.batch_requests for t in b["transfers"]}
    assert hub.validated_cards and set(hub.validated_cards) == {"# card\n"}

    # (huggingface_hub may also GET /api/agent-harnesses for its user-agent; not part of the upload.)
    names = [name for name, _ in hub.log if name != "agent-harnesses"]
    assert set(names) == {
        "repo-create", "branch", "validate-yaml", "preupload", "lfs-batch", "lfs-put", "lfs-verify", "commit"
    }
    assert names[:2] == ["repo-create", "branch"] and names[-1] == "commit"
    assert names.count("lfs-put") == 2 and names.count("commit") == 1


def test_push_to_existing_repo_by_bare_name_goes_to_main(hub, release):
    hub.add_repo(f"{USER}/tiny-digits")  # create_repo answers 409: exist_ok
    expected = _local(release, ["config.json", "model.safetensors", "README.md"])

    url = push_to_hub(release, "tiny-digits")

    assert not hub.unexpected
    repo = f"{USER}/tiny-digits"
    assert [(c["repo"], c["rev"]) for c in hub.commits] == [(repo, "main")]
    assert url == f"{hub.endpoint}/{repo}/commit/{hub.commits[0]['oid']}"
    assert hub.commits[0]["files"] == expected
    assert hub.commits[0]["lfs"] == {"model.safetensors": hashlib.sha256(expected["model.safetensors"]).hexdigest()}
    assert list(hub.repos) == [repo]
    names = [name for name, _ in hub.log if name != "agent-harnesses"]
    assert names[0] == "repo-create" and "branch" not in names and names[-1] == "commit"
    assert names.count("commit") == 1


def test_fake_hub_rejects_unknown_requests(hub):
    with pytest.raises(AssertionError, match="unexpected request to the fake Hub: GET https://example.com/"):
        hf_http.get_session().get("https://example.com/")
    assert hub.unexpected == ["GET https://example.com/"]
    hub.unexpected.clear()  # expected here; the fixture checks that nothing else was unexpected
    with pytest.raises(AssertionError, match="real connection"):
        socket.create_connection(("127.0.0.1", 9), timeout=1)


def test_fit_help_mentions_push_to_hub():
    out = subprocess.run(
        [sys.executable, "-m", "train.fit", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "--push-to-hub" in out.stdout
