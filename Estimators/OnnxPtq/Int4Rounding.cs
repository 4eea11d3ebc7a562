namespace MLNetQuant.OnnxPtq;

/// <summary>How weight-only int4 quantization (<see cref="Int4QuantizationOptions"/>) picks each weight's code.</summary>
public enum Int4Rounding
{
    /// <summary>Round to nearest on each block's grid, the grid fitted to the block (least squared error): no data read.</summary>
    RoundToNearest,

    /// <summary>GPTQ: each input column's rounding error is spread over the columns not yet rounded, weighted by the
    /// calibration inputs' second moments, so each layer's output stays closest to float. Reads
    /// <see cref="Int4QuantizationOptions.CalibrationRows"/> rows; costs seconds on a small transformer.</summary>
    Gptq,
}
