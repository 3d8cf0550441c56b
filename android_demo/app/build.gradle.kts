plugins {
    id("com.android.application")
    id("org.jetbrains.kotlin.android")
}

android {
    namespace = "org.mobileenhance.demo"
    compileSdk = 34

    defaultConfig {
        applicationId = "org.mobileenhance.demo"
        minSdk = 24
        targetSdk = 34
        versionCode = 1
        versionName = "0.1.0"
    }

    buildTypes {
        release {
            isMinifyEnabled = false
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_17
        targetCompatibility = JavaVersion.VERSION_17
    }

    kotlinOptions {
        jvmTarget = "17"
    }

    androidResources {
        noCompress += "tflite"
    }
}

dependencies {
    // LiteRT (formerly TensorFlow Lite): the org.tensorflow.lite.Interpreter API, the GPU
    // delegate and its options classes. One version for all three.
    val litert = "1.4.2"
    implementation("com.google.ai.edge.litert:litert:$litert")
    implementation("com.google.ai.edge.litert:litert-gpu:$litert")
    implementation("com.google.ai.edge.litert:litert-gpu-api:$litert")
}

/**
 * Bundles exported models: copies NAME.tflite and its NAME.json sidecar from the models
 * folder (../tflite_models, or -PdemoModelsDir=PATH) into the variant's generated assets
 * under models/. Every model there by default; -PdemoModels=a,b bundles only those.
 * Fails, naming the file, when a model has no sidecar or there is no model to bundle.
 */
abstract class CopyModelsTask : DefaultTask() {
    @get:InputDirectory
    @get:PathSensitive(PathSensitivity.RELATIVE)
    abstract val modelsDir: DirectoryProperty

    @get:Input
    abstract val only: ListProperty<String>

    @get:OutputDirectory
    abstract val outputDir: DirectoryProperty

    @TaskAction
    fun copyModels() {
        val source = modelsDir.get().asFile
        val target = outputDir.get().asFile.resolve("models")
        target.deleteRecursively()
        target.mkdirs()
        val available = source.listFiles()
            .orEmpty()
            .filter { it.isFile && it.name.endsWith(".tflite") }
            .map { it.name.removeSuffix(".tflite") }
            .sorted()
        val wanted = only.get()
        val unknown = wanted.filter { it !in available }
        if (unknown.isNotEmpty()) {
            throw GradleException("-PdemoModels names $unknown, but $source holds only $available")
        }
        val chosen = if (wanted.isEmpty()) available else wanted
        if (chosen.isEmpty()) {
            throw GradleException(
                "$source holds no NAME.tflite: export a model with its sidecar first " +
                    "(see tflite_models/README.md), or pass -PdemoModelsDir=PATH"
            )
        }
        for (name in chosen) {
            val model = source.resolve("$name.tflite")
            val sidecar = source.resolve("$name.json")
            if (!sidecar.isFile) {
                throw GradleException(
                    "$model has no sidecar $sidecar beside it: the app reads the input size and type from it; " +
                        "export the two together"
                )
            }
            model.copyTo(target.resolve(model.name))
            sidecar.copyTo(target.resolve(sidecar.name))
        }
        logger.lifecycle("copyModels: bundled ${chosen.joinToString()} from $source")
    }
}

androidComponents {
    onVariants { variant ->
        val copy = tasks.register<CopyModelsTask>("copy${variant.name.replaceFirstChar { it.uppercase() }}Models") {
            val custom = providers.gradleProperty("demoModelsDir")
            modelsDir.set(
                if (custom.isPresent) layout.projectDirectory.dir(custom.get())
                else rootProject.layout.projectDirectory.dir("../tflite_models")
            )
            only.set(
                providers.gradleProperty("demoModels")
                    .map { names -> names.split(",").map { it.trim() }.filter { it.isNotEmpty() } }
                    .orElse(emptyList())
            )
        }
        variant.sources.assets?.addGeneratedSourceDirectory(copy, CopyModelsTask::outputDir)
    }
}
