# BundleAlgo.train runs: python scripts/train.py run --config_file=[configs/hyper_parameters.yaml] [--key=value ...]
import fire

from monai_genseg.auto3dseg.run import train

if __name__ == "__main__":
    fire.Fire({"run": train})
