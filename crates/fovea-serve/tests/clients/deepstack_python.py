"""deepstack-python (PyPI), unchanged, against a server: registers alice and bob, then
recognises the group photo. Prints what the client returned, as JSON.

usage: deepstack_python.py HOST PORT FOLDER  (FOLDER holds alice.png, bob.png, group.jpg)
"""
import json
import os
import sys

import deepstack.core as ds

host, port, folder = sys.argv[1], int(sys.argv[2]), sys.argv[3]


def read(name):
    with open(os.path.join(folder, name), "rb") as f:
        return f.read()


# the client's own default min_confidence is 0.45, which accepts almost anyone (on
# DeepStack as here); 0.67 is DeepStack's server default
face = ds.DeepstackFace(ip=host, port=port, min_confidence=0.67)
out = {
    "register": [face.register("alice", read("alice.png")), face.register("bob", read("bob.png"))],
    "faces": face.get_registered_faces(),
    "recognize": face.recognize(read("group.jpg")),
    "detect": face.detect(read("group.jpg")),
}
try:
    face.register("nobody", b"not a picture")
except ds.DeepstackException as e:
    out["bad_register"] = str(e)
print(json.dumps(out))
