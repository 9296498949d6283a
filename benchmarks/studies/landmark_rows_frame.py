"""Which handedness/aspect assumption makes borisgraudt rows look like the runtime's rows:
train the landmark MLP on cached image-source rows, score boris rows under each assumption."""
import sys, numpy as np, torch
from asl_edge.train.hand_boxes import source_with_hands
from asl_edge.train.models import FusionHead
from asl_edge.train.landmark_fit import fit_landmark_classifier
from asl_edge.train import landmark_rows as LR
from asl_edge.runtime.contract import KAGGLE_CLASSES
from asl_edge.runtime.landmarks import stack
S='../shared/data/'
srcs=sys.argv[1:]
samples=[]
for i,s in enumerate(srcs):
    ss,_=source_with_hands(S+s, i, 100, log=lambda *a: None); samples+=ss
rows=torch.from_numpy(stack([s.hand for s in samples], len(samples)))
labels=torch.tensor([s.label for s in samples])
for seed in (0,1):
    head=FusionHead(8, 29)
    fit_landmark_classifier(head.landmarks, rows, labels, torch.ones(len(labels)), True, seed, log=lambda *a: None)
    for hand in ("Right","Left"):
        for w,h in ((640,480),(480,480),(1280,720)):
            LR.HANDEDNESS, LR.FRAME_W, LR.FRAME_H = hand, float(w), float(h)
            r=LR.load_landmark_rows(S+'borisgraudt_landmarks/landmarks.csv', KAGGLE_CLASSES, 100)
            with torch.no_grad():
                acc=(head.landmarks(torch.from_numpy(r.rows)).argmax(1).numpy()==r.labels).mean()
            print(seed, hand, f"{w}x{h}", f"{100*acc:.1f}%", flush=True)
