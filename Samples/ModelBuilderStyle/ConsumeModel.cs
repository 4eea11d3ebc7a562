using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetQuant.Samples.ModelBuilderStyle;

/// <summary>Model Builder's <c>ConsumeModel</c>: one cached PredictionEngine over the saved .zip. Needs only
/// Microsoft.ML, Microsoft.ML.OnnxTransformer and ONNX Runtime at run time.</summary>
public static class ConsumeModel
{
    private static Lazy<(PredictionEngine<ModelInput, ModelOutput> Engine, string[] Classes)>? s_engine;

    /// <summary>Where the trained model lives.</summary>
    public static string ModelPath { get; set; } = Path.Combine(AppContext.BaseDirectory, "MLModel.zip");

    /// <summary>The class names, in the order of <see cref="ModelOutput.Score"/>.</summary>
    public static string[] ClassNames => Engine.Classes;

    /// <summary>Predicts one input. (A PredictionEngine is not thread-safe; use one per thread, or
    /// Microsoft.Extensions.ML's PredictionEnginePool in ASP.NET Core.)</summary>
    public static ModelOutput Predict(ModelInput input)
    {
        return Engine.Engine.Predict(input);
    }

    private static (PredictionEngine<ModelInput, ModelOutput> Engine, string[] Classes) Engine =>
        (s_engine ??= new Lazy<(PredictionEngine<ModelInput, ModelOutput>, string[])>(Create)).Value;

    private static (PredictionEngine<ModelInput, ModelOutput>, string[]) Create()
    {
        var ml = new MLContext();
        var model = ml.Model.Load(ModelPath, out var inputSchema);
        // Score's slot names are the class names (the label's key values), as after any ML.NET multiclass trainer.
        VBuffer<ReadOnlyMemory<char>> names = default;
        model.GetOutputSchema(inputSchema)["Score"].GetSlotNames(ref names);
        var engine = ml.Model.CreatePredictionEngine<ModelInput, ModelOutput>(model);
        return (engine, names.DenseValues().Select(n => n.ToString()).ToArray());
    }
}
