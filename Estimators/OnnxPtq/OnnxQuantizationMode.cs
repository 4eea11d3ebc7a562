namespace MLNetQuant.OnnxPtq;

/// <summary>What an <see cref="OnnxQuantizationEstimator"/> does to its ONNX model.</summary>
internal enum OnnxQuantizationMode
{
    /// <summary>Static: weights and activations, activation ranges calibrated over the data (Observer).</summary>
    Observer,

    /// <summary>Weights only; reads no data (Naive).</summary>
    Naive,

    /// <summary>Weights int8, activations quantized at run time (Dynamic).</summary>
    Dynamic,

    /// <summary>Weights int4 in blocks, activations float (Int4).</summary>
    Int4,
}
