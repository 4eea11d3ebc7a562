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
