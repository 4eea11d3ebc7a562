using MLNetQuant.Core;
using MLNetQuant.Core.Observers;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>Post-training activation quantizer: while calibrating, records every batch into its observer (MinMax,
/// Histogram or Percentile) and returns the tensor unchanged; after calibration, fake-quantizes with the observer's
/// parameters.</summary>
internal sealed class ObserverActivationQuantizer : AffineTensorQuantizer
{
    private readonly QuantObserver _observer;
    private readonly string _layerName;

    public ObserverActivationQuantizer(QuantType type, QuantObserver observer, string layerName) : base(type, observer.Spec)
    {
        _observer = observer;
        _layerName = layerName;
    }

    public override Tensor Quantize(Tensor x, QuantContext context)
    {
        if (context.Calibrating)
        {
            _observer.Observe(x);
            return x;
        }
        var current = Current ?? throw new InvalidOperationException(
            $"The {Type} of layer '{_layerName}' has not been calibrated; run calibration before inference.");
        return Apply(x, current);
    }

    public override void FinishCalibration()
    {
        if (_observer.ObservedBatches == 0)
            throw new InvalidOperationException(
                $"The {Type} of layer '{_layerName}' saw no data during calibration; is the layer on the forward path?");
        SetCurrent(_observer.ComputeQParams());
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing) _observer.Dispose();
        base.Dispose(disposing);
    }
}
