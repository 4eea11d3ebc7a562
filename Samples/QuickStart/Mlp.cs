using MLNetQuant.Core;
using MLNetQuant.Core.Observers;
using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.Samples.QuickStart;

/// <summary>A 784-256-10 perceptron whose forward can run in float, or simulate int8 inference with MLNetQuant's core:
/// int8 per-channel symmetric weights and uint8 per-tensor affine activations (the layout ONNX Runtime runs fastest).
/// In the simulated mode the weights' qparams come from their current range (QAT) and the activations' from
/// observers (a moving average while training, a calibrated histogram after post-training calibration).</summary>
internal sealed class Mlp : IDisposable
{
    private readonly TorchSharp.Modules.Linear _fc1 = nn.Linear(784, 256);
    private readonly TorchSharp.Modules.Linear _fc2 = nn.Linear(256, 10);

    public Mlp(Device device)
    {
        _fc1.to(device);
        _fc2.to(device);
    }

    public TorchSharp.Modules.Parameter[] Parameters => _fc1.parameters().Concat(_fc2.parameters()).ToArray();

    /// <summary>Observers of the two layer inputs (the image, then the hidden ReLU output); null runs in float.</summary>
    public QuantObserver[]? ActivationObservers { get; set; }

    /// <summary>When set, observers are updated by every forward (calibration, or QAT's moving averages).</summary>
    public bool Observing { get; set; }

    public Tensor Forward(Tensor x)
    {
        var hidden = nn.functional.relu(nn.functional.linear(Input(x, 0), Weight(_fc1.weight!), _fc1.bias));
        return nn.functional.linear(Input(hidden, 1), Weight(_fc2.weight!), _fc2.bias);
    }

    /// <summary>Per-layer quantization parameters, for the report.</summary>
    public IEnumerable<(string Tensor, QParams QParams)> Report()
    {
        yield return ("fc1.weight", WeightQParams(_fc1.weight!));
        yield return ("fc2.weight", WeightQParams(_fc2.weight!));
        if (ActivationObservers is null) yield break;
        yield return ("fc1.input", ActivationObservers[0].ComputeQParams());
        yield return ("fc2.input", ActivationObservers[1].ComputeQParams());
    }

    private Tensor Input(Tensor x, int layer)
    {
        if (ActivationObservers is null) return x;
        var observer = ActivationObservers[layer];
        if (Observing) observer.Observe(x);
        using var qParams = observer.ComputeQParams();
        return FakeQuantize.Apply(x, qParams);
    }

    private Tensor Weight(Tensor w)
    {
        if (ActivationObservers is null) return w;
        using var qParams = WeightQParams(w);
        return FakeQuantize.Apply(w, qParams);
    }

    private static QParams WeightQParams(Tensor w)
    {
        using var observer = new PerChannelMinMaxObserver(QuantSpec.Int8PerChannelSymmetricWeights);
        observer.Observe(w);
        return observer.ComputeQParams();
    }

    public void Dispose()
    {
        _fc1.Dispose();
        _fc2.Dispose();
        if (ActivationObservers is null) return;
        foreach (var o in ActivationObservers) o.Dispose();
    }
}
