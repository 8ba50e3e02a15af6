from conftest import *  # noqa
def test_smoke(hub, tiny_artifact):
    from ase_mlpot import hub as h
    commit, files = hub.publish_tiny("tiny", tiny_artifact)
    path = h.download("tiny")
    print(path, commit)
    assert path.name == commit
    print(hub.server.log)
    n = len(hub.server.log)
    from ase_mlpot import load
    calc = load("tiny", device="cpu")
    print(calc.parameters)
    assert len(hub.server.log) == n
