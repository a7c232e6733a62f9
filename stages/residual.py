"""Stage `residual`: the numpy residual block and the conv-gradient exercise."""

from mobilenet_study import residual_exercise as ex
from mobilenet_study.files import atomic_dir, save_figure, write_json
from mobilenet_study.layout import RESIDUAL_METRICS, RESIDUAL_PLOTS
from mobilenet_study.params import load_params
from mobilenet_study.stage import run_stage


def main() -> None:
    params = load_params()
    residual = ex.ResidualParams.from_params(params)
    conv_grad = ex.ConvGradParams.from_params(params)

    steps = ex.run_residual(residual)
    grad = ex.run_conv_grad(conv_grad)

    with atomic_dir(RESIDUAL_PLOTS) as plots:
        save_figure(ex.residual_figure(steps, residual), plots / "residual_block.png")
        save_figure(ex.conv_grad_figure(conv_grad, grad), plots / "conv_grad.png")
    write_json(RESIDUAL_METRICS, ex.residual_metrics(steps, grad))


if __name__ == "__main__":
    run_stage(main)
