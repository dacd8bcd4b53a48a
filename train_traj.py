"""The seed sketch's training script name: `python train_traj.py [options]` is `xmem-traj train`."""

import sys

from xmem_traj.cli import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
