"""The built-in networks: output shapes and the parameter counts of the papers' models."""

import pytest
import torch

from lrpilot.tasks import models


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(
    ("make", "input_shape"),
    [
        (models.DigitsLeNet, (1, 8, 8)),
        (models.DigitsMLP, (1, 8, 8)),
        (models.DigitsMLP, (64,)),
        (models.Mnist1dMLP, (40,)),
        (models.Mnist1dCNN, (40,)),
        (models.Mnist1dCNN, (1, 40)),
        (models.MnistLeNet, (1, 28, 28)),
        (models.CifarCNN3, (3, 32, 32)),
        (models.resnet20, (3, 32, 32)),
        (models.resnet32, (3, 32, 32)),
    ],
)
def test_output_is_batch_by_classes(make, input_shape):
    assert make()(torch.randn(3, *input_shape)).shape == (3, 10)


@pytest.mark.parametrize(
    ("make", "count"),
    [
        (models.resnet20, 269_722),  # He et al. Table 6: 0.27M
        (models.resnet32, 464_154),  # 0.46M
        (models.MnistLeNet, 431_080),  # Caffe's LeNet: 20*25+20 + 50*500+50 + 800*500+500 + 500*10+10
        (models.CifarCNN3, 145_578),  # Caffe's cifar10_quick: 2432 + 25632 + 51264 + 65600 + 650
        (models.Mnist1dCNN, 5_210),  # the mnist1d authors' ConvBase: 150 + 1900 + 1900 + 1250 + biases
    ],
)
def test_parameter_counts(make, count):
    assert n_params(make()) == count


def test_resnet_depths_follow_6n_plus_2():
    for depth, n in ((20, 3), (32, 5), (44, 7)):
        net = models.CifarResNet(depth)
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(net.blocks) == 3 * n and len(convs) + 1 == depth  # + the final fc layer
    with pytest.raises(ValueError, match="depth=21"):
        models.CifarResNet(21)


def test_option_a_shortcut_is_parameter_free_and_zero_pads():
    block = models.BasicBlock(16, 32, stride=2)
    assert n_params(block) == 32 * 16 * 9 + 32 * 32 * 9 + 4 * 32  # two convs and two batch norms, no shortcut weights
    x = torch.randn(2, 16, 8, 8)
    for m in (block.conv1, block.conv2):
        torch.nn.init.zeros_(m.weight)  # the residual branch is then 0 + BN bias 0: out = relu(shortcut)
    out = block.eval()(x)
    assert out.shape == (2, 32, 4, 4)
    torch.testing.assert_close(out[:, 8:24], torch.relu(x[:, :, ::2, ::2]))
    assert out[:, :8].abs().sum() == 0 and out[:, 24:].abs().sum() == 0


def test_cifar_cnn3_pools_like_caffe():
    net = models.CifarCNN3()
    sizes = []
    h = torch.randn(1, 3, 32, 32)
    for layer in net:
        h = layer(h)
        if isinstance(layer, (torch.nn.MaxPool2d, torch.nn.AvgPool2d)):
            sizes.append(h.shape[-1])
    assert sizes == [16, 8, 4]


def test_mnist_lenet_xavier_init_is_caffes_filler():
    torch.manual_seed(0)
    model = models.MnistLeNet()
    for layer in (m for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))):
        bound = (3.0 / layer.weight[0].numel()) ** 0.5
        assert layer.weight.abs().max() <= bound and layer.weight.abs().max() > 0.9 * bound
        assert torch.count_nonzero(layer.bias) == 0
    torch.manual_seed(0)
    assert torch.count_nonzero(models.MnistLeNet(init="torch")[0].bias) > 0
    with pytest.raises(ValueError, match="init='he'"):
        models.MnistLeNet(init="he")
