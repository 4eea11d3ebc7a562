using static TorchSharp.torch;

namespace MLNetQuant.Samples.Shared;

/// <summary>The networks the samples and benchmarks train on Fashion-MNIST (input [1, 28, 28], 10 classes).</summary>
public static class FashionNets
{
    /// <summary>The reference CNN of the benchmarks: Conv2d(1,16,5,p2)-BN-ReLU-MaxPool2, Conv2d(16,32,5,p2)-BN-ReLU-MaxPool2,
    /// Flatten, Linear(1568,128)-ReLU, Linear(128,10). Module names: 0 … 11 in that order.</summary>
    public static nn.Module<Tensor, Tensor> Cnn() => Build(() => nn.ReLU());

    /// <summary>The quick start's CNN, wide enough for int8 to pay off in ONNX Runtime (most of its work is in the 32→64
    /// and 64→64 3×3 convolutions, which run as integer kernels): Conv2d(1,32,3,p1)-BN-ReLU-MaxPool2,
    /// Conv2d(32,64,3,p1)-BN-ReLU, Conv2d(64,64,3,p1)-BN-ReLU-MaxPool2, Flatten, Linear(3136,128)-ReLU, Linear(128,10).</summary>
    public static nn.Module<Tensor, Tensor> WideCnn() => nn.Sequential(
        nn.Conv2d(1, 32, 3, padding: 1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding: 1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 64, 3, padding: 1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(3136, 128), nn.ReLU(), nn.Linear(128, 10));

    /// <summary>A MobileNet-style depthwise-separable CNN (ReLU6 throughout), the net per-tensor int8 weights hurt most:
    /// Conv2d(1,16,3,p1)-BN-ReLU6, then four blocks of depthwise Conv2d(c,c,3,p1,groups c)-BN-ReLU6 and pointwise
    /// Conv2d(c,c',1)-BN-ReLU6 (16→32 at stride 2, 32→64, 64→128 at stride 2, 128→128), AdaptiveAvgPool2d(1),
    /// Flatten, Linear(128,10).</summary>
    public static nn.Module<Tensor, Tensor> DepthwiseSeparableCnn()
    {
        var layers = new List<nn.Module<Tensor, Tensor>> { nn.Conv2d(1, 16, 3, padding: 1), nn.BatchNorm2d(16), nn.ReLU6() };
        foreach (var (input, output, stride) in new[] { (16, 32, 2), (32, 64, 1), (64, 128, 2), (128, 128, 1) })
        {
            layers.Add(nn.Conv2d(input, input, 3, stride: stride, padding: 1, groups: input));
            layers.Add(nn.BatchNorm2d(input));
            layers.Add(nn.ReLU6());
            layers.Add(nn.Conv2d(input, output, 1));
            layers.Add(nn.BatchNorm2d(output));
            layers.Add(nn.ReLU6());
        }
        layers.Add(nn.AdaptiveAvgPool2d(1));
        layers.Add(nn.Flatten());
        layers.Add(nn.Linear(128, 10));
        return nn.Sequential(layers.ToArray());
    }

    /// <summary>The same CNN with Hardtanh in place of ReLU, for binarized training (BNN).</summary>
    public static nn.Module<Tensor, Tensor> HardtanhCnn() => Build(() => nn.Hardtanh());

    /// <summary>The Hardtanh CNN with a BatchNorm1d after Linear(1568,128), as binarized nets usually have after every
    /// binarized layer: names 0 … 12, the BN being 10.</summary>
    public static nn.Module<Tensor, Tensor> HardtanhCnnWithLinearBatchNorm() => Build(() => nn.Hardtanh(), linearBatchNorm: true);

    private static nn.Module<Tensor, Tensor> Build(Func<nn.Module<Tensor, Tensor>> activation, bool linearBatchNorm = false)
    {
        var layers = new List<nn.Module<Tensor, Tensor>>
        {
            nn.Conv2d(1, 16, 5, padding: 2), nn.BatchNorm2d(16), activation(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 5, padding: 2), nn.BatchNorm2d(32), activation(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(1568, 128),
        };
        if (linearBatchNorm) layers.Add(nn.BatchNorm1d(128));
        layers.Add(activation());
        layers.Add(nn.Linear(128, 10));
        return nn.Sequential(layers.ToArray());
    }
}
