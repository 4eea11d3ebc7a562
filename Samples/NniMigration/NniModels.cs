using static TorchSharp.torch;

namespace MLNetQuant.Samples.NniMigration;

/// <summary>The nets of NNI's quantization examples, with NNI's module names, sized for 28×28 Fashion-MNIST.</summary>
internal static class NniModels
{
    /// <summary>NNI's <c>NaiveModel</c> (examples/model_compress/models/mnist/naive.py): conv1(1,20,5) relu1 ReLU6
    /// max_pool1, conv2(20,50,5) relu2 ReLU6 max_pool2, flatten (800), fc1(800,500) relu3 ReLU6, fc2(500,10).</summary>
    public static nn.Module<Tensor, Tensor> NaiveModel() => nn.Sequential(
        ("conv1", nn.Conv2d(1, 20, 5)), ("relu1", nn.ReLU6()), ("max_pool1", nn.MaxPool2d(2)),
        ("conv2", nn.Conv2d(20, 50, 5)), ("relu2", nn.ReLU6()), ("max_pool2", nn.MaxPool2d(2)),
        ("flatten", nn.Flatten()), ("fc1", nn.Linear(800, 500)), ("relu3", nn.ReLU6()), ("fc2", nn.Linear(500, 10)));

    /// <summary>A small version of NNI's BNN VGG (BNN_quantizer_cifar10.py) for one-channel 28×28 images: the same
    /// layer pattern (bias-free convs, BN after pooling, Hardtanh), fewer channels. Names follow NNI's
    /// <c>features.i</c> / <c>classifier.i</c>.</summary>
    public static nn.Module<Tensor, Tensor> BnnVgg() => nn.Sequential(
        ("features", nn.Sequential(
            nn.Conv2d(1, 32, 3, padding: 1, bias: false), nn.BatchNorm2d(32), nn.Hardtanh(),
            nn.Conv2d(32, 32, 3, padding: 1, bias: false), nn.MaxPool2d(2), nn.BatchNorm2d(32), nn.Hardtanh(),
            nn.Conv2d(32, 64, 3, padding: 1, bias: false), nn.MaxPool2d(2), nn.BatchNorm2d(64), nn.Hardtanh())),
        ("classifier", nn.Sequential(
            nn.Flatten(), nn.Linear(64 * 7 * 7, 256, hasBias: false), nn.BatchNorm1d(256), nn.Hardtanh(),
            nn.Linear(256, 10), nn.BatchNorm1d(10, affine: false))));
}
