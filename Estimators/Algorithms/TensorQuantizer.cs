using MLNetQuant.Core;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>What a forward is doing, for the quantizers that behave differently while training, calibrating or
/// evaluating.</summary>
/// <param name="Training">Training mode: statistics and learned initialisations update.</param>
/// <param name="Calibrating">Post-training calibration: observers record, nothing is quantized yet.</param>
/// <param name="Step">NNI's step counter: 1 before the first optimizer step, +1 after each.</param>
internal readonly record struct QuantContext(bool Training, bool Calibrating, long Step);

/// <summary>One quantized tensor (a weight, input or output) of one layer: chooses its grid and fake-quantizes it.
/// Each algorithm supplies its own kinds; the network calls them from its forward.</summary>
internal abstract class TensorQuantizer : IDisposable
{
    protected TensorQuantizer(QuantType type, QuantSpec spec)
    {
        Type = type;
        Spec = spec;
    }

    /// <summary>Which tensor of the layer this quantizes.</summary>
    public QuantType Type { get; }

    /// <summary>The configured grid (an algorithm may refine it, e.g. LSQ's unsigned grid after ReLU).</summary>
    public QuantSpec Spec { get; protected set; }

    /// <summary>Returns the fake-quantized tensor (or <paramref name="x"/> itself while quantization is inactive).</summary>
    public abstract Tensor Quantize(Tensor x, QuantContext context);

    /// <summary>Learned quantization parameters (LSQ steps) the optimizer must update.</summary>
    public virtual IEnumerable<Parameter> LearnableParameters => Array.Empty<Parameter>();

    /// <summary>Called after every optimizer step with the layer's latent weight (weights only); BNN clips it.</summary>
    public virtual void AfterOptimizerStep(Parameter? latentWeight) { }

    /// <summary>Ends post-training calibration: turns what was observed into quantization parameters.</summary>
    public virtual void FinishCalibration() { }

    /// <summary>The grid the last quantized values lie on, as scale and zero-point (CPU copies), or null when the
    /// tensor has not been quantized yet.</summary>
    public abstract QParams? CurrentQParams();

    /// <inheritdoc />
    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    /// <summary>Releases tensors the quantizer holds.</summary>
    protected virtual void Dispose(bool disposing) { }
}
