import hashlib, sys, time, torch, json
from captum_slingshot.models import pretrained_mnist_cnn
from captum_slingshot.data import load_mnist, normalize_mnist
from captum_slingshot.demo import demo_slingshot

def state_hash(sd):
    h = hashlib.sha256()
    for k in sorted(sd):
        h.update(k.encode()); h.update(sd[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()

threads = int(sys.argv[1]); steps = [int(s) for s in sys.argv[2].split(",")]
torch.set_num_threads(threads)
t0 = time.time()
base = pretrained_mnist_cnn(epochs=1, seed=0, progress=False)
out = {"threads": threads, "base": state_hash(base.state_dict()), "torch": torch.__version__}
data = normalize_mnist(load_mnist("train").tensors[0])
for n in steps:
    res = demo_slingshot(steps=n, progress=False).fit(base, data)
    out[f"steps_{n}"] = state_hash(res.model.state_dict())
    out[f"loss_{n}"] = res.history["loss"][-1]
out["seconds"] = round(time.time() - t0, 1)
print(json.dumps(out))
