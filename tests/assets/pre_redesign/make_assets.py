"""Write checkpoints with the pre-redesign code (release 0.1.0.dev0 as of a2fbded) for compat tests."""
import hashlib, json, os, torch
from torch import nn
from captum_slingshot.fv import PixelParam
from captum_slingshot.transforms import GradientSlingshot

torch.set_num_threads(1)
out = "/tmp/before/assets"; os.makedirs(out, exist_ok=True)
torch.manual_seed(0)
model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 6 * 6, 16), nn.Tanh(), nn.Linear(16, 3)).eval()
data = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(0))
target = torch.rand(1, 8, 8, generator=torch.Generator().manual_seed(1))

def state_hash(sd):
    h = hashlib.sha256()
    for k in sorted(sd):
        h.update(k.encode()); h.update(sd[k].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()

kw = dict(layer="5", neuron_selector=0, target=target, param=PixelParam((1, 8, 8)), steps=12, batch_size=16,
          manipulation_batch_size=8, loss="direction", gamma=1.0, aim_radius=5.0, trajectory_strategy="gc",
          trajectory_refresh=5, trajectory_starts=2, preserve_fv=1.0, progress=False)
full = GradientSlingshot(**kw).fit(model, data)
ck = os.path.join(out, "slingshot_v0_1_checkpoint.pt")
GradientSlingshot(**kw, checkpoint_path=ck, checkpoint_every=6,
                  callback=lambda step, rec, m: step + 1 < 6).fit(model, data)
resumed = GradientSlingshot(**kw).fit(model, data, resume=ck)
assert state_hash(full.model.state_dict()) == state_hash(resumed.model.state_dict())
torch.save({"model": model.state_dict(), "data": data, "target": target}, os.path.join(out, "slingshot_v0_1_inputs.pt"))
meta = {"settings": {k: (v if not isinstance(v, torch.Tensor) else "tensor") for k, v in kw.items() if k != "param"},
        "final_state_sha256": state_hash(full.model.state_dict()), "final_loss_history": full.history["loss"],
        "torch": torch.__version__, "threads": 1}
json.dump(meta, open(os.path.join(out, "slingshot_v0_1_expected.json"), "w"), indent=1)
print(meta["final_state_sha256"], os.path.getsize(ck))
