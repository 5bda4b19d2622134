package dev.llmc4j.architecture;

import static com.tngtech.archunit.library.Architectures.layeredArchitecture;
import static com.tngtech.archunit.library.dependencies.SlicesRuleDefinition.slices;

import com.tngtech.archunit.core.importer.ImportOption;
import com.tngtech.archunit.junit.AnalyzeClasses;
import com.tngtech.archunit.junit.ArchTest;
import com.tngtech.archunit.lang.ArchRule;

/**
 * The architecture as tests (see docs/src/docs/asciidoc/architecture.adoc). The Maven modules already keep their
 * dependencies one way at compile time (a module cannot import what its pom does not name); these rules also hold
 * the packages inside a module to one direction, and name the broken rule and the offending classes when someone
 * adds an import that goes the wrong way.
 *
 * <pre>
 *   core  <-  cpu  <-  parallel  <-  train  <-  gpt2-cpu, gpt2-cuda, llama3  <-  cli, tutorials, benchmarks
 * </pre>
 *
 * Only the project's main classes are read (the test classes, which may reach across, are left out).
 */
@AnalyzeClasses(packages = "dev.llmc4j", importOptions = ImportOption.DoNotIncludeTests.class)
class ArchitectureTest {

    // the packages of each module (a package lives in exactly one module)
    private static final String[] CORE = {
        "dev.llmc4j.util..",
        "dev.llmc4j.format..",
        "dev.llmc4j.data..",
        "dev.llmc4j.tokenizer..",
        "dev.llmc4j.random..",
        "dev.llmc4j.sample..",
        "dev.llmc4j.model.."
    };
    private static final String CPU = "dev.llmc4j.cpu..";
    private static final String PARALLEL = "dev.llmc4j.distributed..";
    private static final String TRAIN = "dev.llmc4j.train..";
    private static final String GPT2_CPU = "dev.llmc4j.gpt2"; // the package itself, not gpt2.cuda
    private static final String GPT2_CUDA = "dev.llmc4j.gpt2.cuda..";
    private static final String LLAMA3 = "dev.llmc4j.llama3..";
    private static final String CLI = "dev.llmc4j.cli..";
    private static final String TUTORIALS = "dev.llmc4j.tutorials..";
    private static final String BENCHMARKS = "dev.llmc4j.bench..";

    @ArchTest
    static final ArchRule noCyclesBetweenPackages = slices().matching("dev.llmc4j.(*)..")
            .namingSlices("package dev.llmc4j.$1")
            .should()
            .beFreeOfCycles()
            .because("a package that reaches back to one that uses it cannot be read, tested or moved on its own;"
                    + " break the cycle by moving the class to the lower package or by an interface there");

    @ArchTest
    static final ArchRule modulesDependOneWay = layeredArchitecture()
            .consideringOnlyDependenciesInLayers()
            .layer("common/core")
            .definedBy(CORE)
            .layer("common/cpu")
            .definedBy(CPU)
            .layer("common/parallel")
            .definedBy(PARALLEL)
            .layer("common/train")
            .definedBy(TRAIN)
            .layer("gpt2-cpu")
            .definedBy(GPT2_CPU)
            .layer("gpt2-cuda")
            .definedBy(GPT2_CUDA)
            .layer("llama3")
            .definedBy(LLAMA3)
            .layer("cli")
            .definedBy(CLI)
            .layer("tutorials")
            .definedBy(TUTORIALS)
            .layer("benchmarks")
            .definedBy(BENCHMARKS)
            .whereLayer("common/core")
            .mayOnlyBeAccessedByLayers(
                    "common/cpu",
                    "common/parallel",
                    "common/train",
                    "gpt2-cpu",
                    "gpt2-cuda",
                    "llama3",
                    "cli",
                    "tutorials",
                    "benchmarks")
            .whereLayer("common/cpu")
            .mayOnlyBeAccessedByLayers(
                    "common/parallel",
                    "common/train",
                    "gpt2-cpu",
                    "gpt2-cuda",
                    "llama3",
                    "cli",
                    "tutorials",
                    "benchmarks")
            .whereLayer("common/parallel")
            .mayOnlyBeAccessedByLayers(
                    "common/train", "gpt2-cpu", "gpt2-cuda", "llama3", "cli", "tutorials", "benchmarks")
            .whereLayer("common/train")
            .mayOnlyBeAccessedByLayers("gpt2-cpu", "gpt2-cuda", "llama3", "cli", "tutorials", "benchmarks")
            // the models stand side by side: none of them uses another
            .whereLayer("gpt2-cpu")
            .mayOnlyBeAccessedByLayers("cli", "tutorials", "benchmarks")
            .whereLayer("gpt2-cuda")
            .mayOnlyBeAccessedByLayers("cli", "tutorials", "benchmarks")
            .whereLayer("llama3")
            .mayOnlyBeAccessedByLayers("cli", "tutorials", "benchmarks")
            .whereLayer("cli")
            .mayNotBeAccessedByAnyLayer()
            .whereLayer("tutorials")
            .mayNotBeAccessedByAnyLayer()
            .whereLayer("benchmarks")
            .mayNotBeAccessedByAnyLayer()
            .because("the modules depend one way: core <- cpu <- parallel <- train <- models <- cli/tutorials/"
                    + "benchmarks (docs: architecture.adoc); a lower module must not know the ones built on it");
}
