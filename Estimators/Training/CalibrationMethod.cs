namespace MLNetQuant.Training;

/// <summary>How the Observer algorithm turns calibration batches into activation ranges.</summary>
public enum CalibrationMethod
{
    /// <summary>The extremes seen over all batches (PyTorch's MinMaxObserver).</summary>
    MinMax,

    /// <summary>Exponential moving averages (constant 0.01) of each batch's minimum and maximum (PyTorch's
    /// MovingAverageMinMaxObserver): less sensitive than MinMax to one extreme batch.</summary>
    MovingAverageMinMax,

    /// <summary>A streamed 2048-bin histogram whose clipping range minimises the L2 quantization error (PyTorch's
    /// HistogramObserver; NNI's choice for activations).</summary>
    Histogram,

    /// <summary>The upper bound whose quantized histogram keeps the most information (smallest KL divergence;
    /// TensorRT's entropy calibration, as in ONNX Runtime's calibrator).</summary>
    Entropy,

    /// <summary>The range that keeps the central p % of the values of a streamed histogram (ObserverOptions.Percentile).</summary>
    Percentile,
}
